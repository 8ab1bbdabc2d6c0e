"""The lesson's five language models for human numbers, from a hand-written loop to a GRU.

All take tokens (B, T) and a hidden state (or None) and return (logits, new hidden state):
logits (B, T, V) for a prediction after every word, (B, V) for Model1's single prediction.
Stateless models return None as their state; the caller detaches and carries the others'.
Hidden sizes: (B, H) for the hand-written loops, (num_layers, B, H) for ``nn.RNN``/``nn.GRU``.

Batch norm over the outputs of Model2..Model5 normalises each of the H features over all B x T
positions, as fastai's ``BatchNorm1dFlat`` in the lesson's Model4 and Model5.
"""

import torch
from torch import nn


def _batch_norm_over_time(norm: nn.BatchNorm1d, states: torch.Tensor) -> torch.Tensor:
    batch, time, hidden = states.shape
    return norm(states.reshape(batch * time, hidden)).view(batch, time, hidden)  # (B, T, H), stats over B*T


class Model1(nn.Module):
    """One shared layer applied in a loop over the words; predicts only the word after the last.

    The lesson feeds it three words at a time (``bptt`` 3) and scores the fourth.

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
        state = tokens.new_zeros(tokens.shape[0], self.hidden_to_hidden.in_features, dtype=torch.float)  # (B, H)
        for step in range(tokens.shape[1]):
            state = state + self.input_to_hidden(tokens[:, step])
            state = self.norm(torch.relu(self.hidden_to_hidden(state)))
        return self.hidden_to_output(state), None  # (B, V)


class Model2(nn.Module):
    """The same loop predicting after every word; its state starts from zero in every batch.

    Args:
        vocab_size: tokens in the vocabulary.
        hidden_dim: hidden size.
    """

    stateful = False

    def __init__(self, vocab_size: int, hidden_dim: int = 64):
        super().__init__()
        self.input_to_hidden = nn.Embedding(vocab_size, hidden_dim)
        self.hidden_to_hidden = nn.Linear(hidden_dim, hidden_dim)
        self.norm = nn.BatchNorm1d(hidden_dim)
        self.hidden_to_output = nn.Linear(hidden_dim, vocab_size)

    def forward(self, tokens: torch.Tensor, hidden: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        state = hidden if self.stateful and hidden is not None else tokens.new_zeros(
            tokens.shape[0], self.hidden_to_hidden.in_features, dtype=torch.float)  # (B, H)
        embedded = self.input_to_hidden(tokens)  # (B, T, H)
        states = []
        for step in range(tokens.shape[1]):
            state = torch.relu(self.hidden_to_hidden(state + embedded[:, step]))
            states.append(state)
        outputs = self.hidden_to_output(_batch_norm_over_time(self.norm, torch.stack(states, dim=1)))  # (B, T, V)
        return outputs, (state if self.stateful else None)


class Model3(Model2):
    """Model2 that starts each batch from the state the previous batch ended with.

    Row j of batch k+1 continues row j of batch k, so the state carries the context across
    windows; the caller detaches it, so gradients stop at the window's start (truncated BPTT).
    """

    stateful = True


class _TorchRecurrent(nn.Module):
    """Embedding -> a torch recurrent layer -> batch norm -> linear; the caller carries the state."""

    def __init__(self, recurrent: nn.RNNBase, vocab_size: int, hidden_dim: int):
        super().__init__()
        self.input_to_hidden = nn.Embedding(vocab_size, hidden_dim)
        self.recurrent = recurrent
        self.norm = nn.BatchNorm1d(hidden_dim)
        self.hidden_to_output = nn.Linear(hidden_dim, vocab_size)

    def forward(self, tokens: torch.Tensor, hidden: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        states, hidden = self.recurrent(self.input_to_hidden(tokens), hidden)  # (B, T, H), (L, B, H)
        return self.hidden_to_output(_batch_norm_over_time(self.norm, states)), hidden  # (B, T, V)


class Model4(_TorchRecurrent):
    """``nn.RNN`` (tanh) with batch norm on its outputs.

    Args:
        vocab_size: tokens in the vocabulary.
        hidden_dim: hidden size.
        num_layers: stacked recurrent layers (the lesson: 1).
    """

    def __init__(self, vocab_size: int, hidden_dim: int = 64, num_layers: int = 1):
        super().__init__(nn.RNN(hidden_dim, hidden_dim, num_layers, batch_first=True), vocab_size, hidden_dim)


class Model5(_TorchRecurrent):
    """``nn.GRU`` with batch norm on its outputs.

    Args:
        vocab_size: tokens in the vocabulary.
        hidden_dim: hidden size.
        num_layers: stacked GRU layers (the lesson: 2).
    """

    def __init__(self, vocab_size: int, hidden_dim: int = 64, num_layers: int = 2):
        super().__init__(nn.GRU(hidden_dim, hidden_dim, num_layers, batch_first=True), vocab_size, hidden_dim)


LANGUAGE_MODELS = {"model1": Model1, "model2": Model2, "model3": Model3, "model4": Model4, "model5": Model5}
STATEFUL = frozenset({"model3", "model4", "model5"})
