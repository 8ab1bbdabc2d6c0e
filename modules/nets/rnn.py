"""The lesson's five language models for human numbers, from a hand-written loop to a GRU.

All take tokens (B, T) and a hidden state (or None) and return (logits, new hidden state):
logits (B, T, V) for a prediction after every word, (B, V) for Model1's single prediction.
Stateless models return None as their state. Hidden sizes follow ``nn.RNN``/``nn.GRU``:
(num_layers, B, H) for those, (B, H) for the hand-written loops.
"""

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn


def _batch_norm_over_time(norm: nn.BatchNorm1d, states: torch.Tensor) -> torch.Tensor:
    batch, time, hidden = states.shape
    return norm(states.reshape(batch * time, hidden)).view(batch, time, hidden)  # statistics over B and T


class Model1(nn.Module):
    """One shared layer applied in a loop over the words; predicts only the word after the last.

    Args:
        vocab_size: tokens in the vocabulary.
        hidden_dim: hidden size.
    """

    def __init__(self, vocab_size: int, hidden_dim: int = 64):
        super().__init__()
        self.input_to_hidden = nn.Embedding(vocab_size, hidden_dim)
        self.hidden_to_hidden = nn.Linear(hidden_dim, hidden_dim)
        self.hidden_to_output = nn.Linear(hidden_dim, vocab_size)
        self.norm = nn.BatchNorm1d(hidden_dim)

    def forward(self, tokens: torch.Tensor, hidden: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        state = torch.zeros(tokens.shape[0], self.hidden_to_hidden.in_features, device=tokens.device)
        for step in range(tokens.shape[1]):
            state = state + self.input_to_hidden(tokens[:, step])  # (B, H)
            state = self.norm(torch.relu(self.hidden_to_hidden(state)))
        return self.hidden_to_output(state), None  # (B, V)


class Model2(Model1):
    """Model1 predicting after every word; the state starts from zero in every batch."""

    def forward(self, tokens: torch.Tensor, hidden: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        state = torch.zeros(tokens.shape[0], self.hidden_to_hidden.in_features, device=tokens.device)
        outputs = []
        for step in range(tokens.shape[1]):
            state = state + self.input_to_hidden(tokens[:, step])
            state = self.norm(torch.relu(self.hidden_to_hidden(state)))
            outputs.append(self.hidden_to_output(state))
        return torch.stack(outputs, dim=1), None  # (B, T, V)


class Model3(Model1):
    """Model2 that keeps its state from one batch to the next (the caller detaches it)."""

    def forward(self, tokens: torch.Tensor, hidden: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        state = hidden if hidden is not None else torch.zeros(
            tokens.shape[0], self.hidden_to_hidden.in_features, device=tokens.device)
        states = []
        for step in range(tokens.shape[1]):
            state = torch.relu(self.hidden_to_hidden(state + self.input_to_hidden(tokens[:, step])))
            states.append(state)
        stacked = torch.stack(states, dim=1)  # (B, T, H)
        return self.hidden_to_output(_batch_norm_over_time(self.norm, stacked)), state


class _TorchRecurrent(nn.Module):
    """Embedding -> a torch recurrent layer -> batch norm -> linear, state carried by the caller.

    Subclasses name the layer (``recurrent_layer``) and its default depth (``default_layers``).

    Args:
        vocab_size: tokens in the vocabulary.
        hidden_dim: hidden size.
        num_layers: stacked recurrent layers (the subclass's default when None).
    """

    recurrent_layer: type[nn.RNNBase]
    default_layers: int

    def __init__(self, vocab_size: int, hidden_dim: int = 64, num_layers: int | None = None):
        # The recurrent layer is made first: the order the weights draw their random initial values in.
        recurrent = self.recurrent_layer(hidden_dim, hidden_dim, num_layers or self.default_layers, batch_first=True)
        super().__init__()
        self.input_to_hidden = nn.Embedding(vocab_size, hidden_dim)
        self.recurrent = recurrent
        self.norm = nn.BatchNorm1d(hidden_dim)
        self.hidden_to_output = nn.Linear(hidden_dim, vocab_size)

    def forward(self, tokens: torch.Tensor, hidden: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        states, hidden = self.recurrent(self.input_to_hidden(tokens), hidden)  # (B, T, H), (L, B, H)
        return self.hidden_to_output(_batch_norm_over_time(self.norm, states)), hidden


class Model4(_TorchRecurrent):
    """``nn.RNN`` (one tanh layer in the lesson) with batch norm on its outputs."""

    recurrent_layer = nn.RNN
    default_layers = 1


class Model5(_TorchRecurrent):
    """``nn.GRU`` (two layers in the lesson) with batch norm on its outputs."""

    recurrent_layer = nn.GRU
    default_layers = 2


LANGUAGE_MODELS = {"model1": Model1, "model2": Model2, "model3": Model3, "model4": Model4, "model5": Model5}

LanguageArch = Literal["model1", "model2", "model3", "model4", "model5"]


@dataclass
class LanguageNetSpec:
    """One of the lesson's five language models, everything but its weights.

    Args:
        arch: ``model1`` .. ``model5``.
        hidden_dim: hidden size.
        num_layers: recurrent layers (model4, model5; the others have one).
    """

    arch: LanguageArch = "model5"
    hidden_dim: int = 64
    num_layers: int = 2

    @property
    def stateful(self) -> bool:
        """Whether the net carries its hidden state from one batch to the next (model3..5)."""
        return self.arch in ("model3", "model4", "model5")

    @property
    def predicts_last_only(self) -> bool:
        """Whether the net predicts only the word after its input (model1) instead of after every word."""
        return self.arch == "model1"

    def build(self, vocab_size: int) -> nn.Module:
        extra = {"num_layers": self.num_layers} if self.arch in ("model4", "model5") else {}
        return LANGUAGE_MODELS[self.arch](vocab_size, self.hidden_dim, **extra)
