"""Next-word language models on a token stream, with hidden state carried across batches."""

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy
from torchmetrics.text import Perplexity

from modules.checkpoints import LoadsOlderCheckpoints
from modules.nets.rnn import LanguageNetSpec
from modules.nets.spec import as_spec, spec_dict
from modules.one_cycle import OneCycle, training_steps
from modules.tensorboard import log_training_loss, tensorboard_of


class LanguageModelModule(LoadsOlderCheckpoints, pl.LightningModule):
    """Cross-entropy over every predicted position; accuracy and perplexity from torchmetrics.

    Stateful nets (model3..5) keep one hidden state per stage (train, val, test): detached after
    every batch, so gradients stop at the window's start (truncated BPTT); reset at the start of
    each epoch of that stage; and rebuilt when a batch has another number of rows.

    Args:
        net: the network's architecture (see ``modules.nets.rnn``).
        vocab_size: tokens in the vocabulary; linked from the datamodule.
        vocab: the tokens themselves, to decode samples; linked from the datamodule and saved
            in checkpoints.
        schedule: the one-cycle schedule.
        context: tokens a stateless net (model1, model2) sees when generating.
        sample_prompt: text continued in TensorBoard after every validation.
        sample_length: tokens generated per continuation.
        temperature: softmax temperature of sampled continuations (greedy ones take the argmax).
    """

    def __init__(
        self,
        net: LanguageNetSpec | None = None,
        vocab_size: int = 31,
        vocab: list[str] | None = None,
        schedule: OneCycle | None = None,
        context: int = 20,
        sample_prompt: str = "eight thousand one hundred",
        sample_length: int = 30,
        temperature: float = 0.7,
    ):
        super().__init__()
        self.save_hyperparameters()
        spec = as_spec(LanguageNetSpec, net)
        self.hparams.net = spec_dict(spec)
        self.net = spec.build(vocab_size)
        self.schedule = as_spec(OneCycle, schedule, OneCycle(lr=1e-2, pct_start=0.3, weight_decay=0.01))
        self.hparams.schedule = spec_dict(self.schedule)
        self.predicts_last_only = spec.predicts_last_only
        self.stateful = spec.stateful
        self.hidden: dict[str, torch.Tensor | None] = {}
        self.val_acc = MulticlassAccuracy(vocab_size, average="micro")
        self.val_ppl = Perplexity()
        self.test_acc = MulticlassAccuracy(vocab_size, average="micro")

    def forward(self, tokens: torch.Tensor, hidden: torch.Tensor | None = None):
        return self.net(tokens, hidden)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return log_training_loss(self, self.training_loss(batch), batch_idx)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        logits, targets = self._run(batch, "val")
        self.log("val/loss", F.cross_entropy(logits.flatten(0, -2), targets.flatten()), prog_bar=True, sync_dist=True)
        self.val_acc(logits.flatten(0, -2), targets.flatten())
        self.val_ppl(logits.reshape(targets.shape[0], -1, logits.shape[-1]), targets.reshape(targets.shape[0], -1))
        self.log_dict({"val/acc": self.val_acc, "val/ppl": self.val_ppl}, prog_bar=True)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        logits, targets = self._run(batch, "test")
        self.test_acc(logits.flatten(0, -2), targets.flatten())
        self.log("test/acc", self.test_acc)

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        prompt = batch["tokens"]
        return {
            "prompt": batch["prompt"],
            "greedy": self.decode(self.generate(prompt, self.hparams.sample_length)),
            "sampled": self.decode(self.generate(prompt, self.hparams.sample_length, self.hparams.temperature)),
        }

    def on_train_epoch_start(self) -> None:
        self.hidden["train"] = None

    def on_validation_epoch_start(self) -> None:
        self.hidden["val"] = None

    def on_test_epoch_start(self) -> None:
        self.hidden["test"] = None

    def on_validation_epoch_end(self) -> None:
        writer = tensorboard_of(self)
        if writer is None or not self.hparams.vocab:
            return
        prompt = self.encode(self.hparams.sample_prompt)
        text = self.decode(self.generate(prompt.to(self.device), self.hparams.sample_length))
        writer.add_text("val/sample", f"**{self.hparams.sample_prompt}** {text}", self.global_step)

    def configure_optimizers(self):
        return self.schedule.adamw(self.parameters(), training_steps(self))

    def training_loss(self, batch: dict) -> torch.Tensor:
        """Cross-entropy of a training window, the hidden state carried on from the last one."""
        logits, targets = self._run(batch, "train")
        return F.cross_entropy(logits.flatten(0, -2), targets.flatten())

    # -- generation ------------------------------------------------------------------------------

    @torch.no_grad()
    def generate(self, prompt: torch.Tensor, length: int, temperature: float | None = None) -> list[int]:
        """Continues ``prompt`` (1, T) by ``length`` tokens: argmax, or sampled at ``temperature``."""
        was_training = self.training
        self.eval()
        tokens = prompt.clone()
        hidden, generated = None, []
        step_input = tokens if self.stateful else tokens[:, -self.hparams.context :]
        for _ in range(length):
            logits, hidden = self.net(step_input, hidden)
            last = logits if self.predicts_last_only else logits[:, -1]  # (1, V)
            if temperature:
                choice = torch.multinomial(F.softmax(last / temperature, dim=-1), 1)
            else:
                choice = last.argmax(dim=-1, keepdim=True)  # (1, 1)
            generated.append(int(choice))
            tokens = torch.cat([tokens, choice], dim=1)
            step_input = choice if self.stateful else tokens[:, -self.hparams.context :]
        self.train(was_training)
        return generated

    def encode(self, text: str) -> torch.Tensor:
        index = {token: i for i, token in enumerate(self.hparams.vocab)}
        return torch.tensor([[index["xxbos"], *(index[word] for word in text.split())]])

    def decode(self, ids: list[int]) -> str:
        return " ".join(self.hparams.vocab[i] for i in ids)

    # -- helpers ---------------------------------------------------------------------------------

    def _run(self, batch: dict, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        tokens, targets = batch["tokens"], batch["targets"]  # (B, T) each
        hidden = self.hidden.get(stage)
        if hidden is not None and hidden.shape[-2] != tokens.shape[0]:
            hidden = None  # a batch with another number of rows: start afresh
        logits, hidden = self.net(tokens, hidden if self.stateful else None)
        self.hidden[stage] = hidden.detach() if hidden is not None else None
        if self.predicts_last_only:
            return logits, targets[:, -1]  # (B, V), (B,)
        return logits, targets  # (B, T, V), (B, T)
