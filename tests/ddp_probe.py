"""A callback for the DDP tests: each process writes a digest of its weights and its metrics."""

import json
from pathlib import Path

import lightning.pytorch as pl
import torch

from modules.freezing import frozen_parameters
from modules.gan import GANModule


class WeightDigest(pl.Callback):
    """On fit end, writes ``ddp_probe.rank<N>.json`` with a weight checksum and the logged metrics, and
    how far the weights that freezing stops moved in the first epoch (frozen in the tiny runs that
    freeze one) and over the whole run.

    Args:
        folder: where to write the files.
    """

    def __init__(self, folder: str = "."):
        self.folder = Path(folder)
        self.frozen_at_start: list[torch.Tensor] = []
        self.frozen_moved_in_first_epoch: float | None = None

    def on_train_start(self, trainer, pl_module):
        encoder = getattr(pl_module, "pretrained_encoder", None)
        if encoder is not None:
            self.frozen_at_start = [p.detach().clone() for p in frozen_parameters(encoder)]

    def _frozen_moved(self, pl_module) -> float | None:
        """The largest change of a weight that freezing stops since training started (None: no encoder)."""
        if not self.frozen_at_start:
            return None
        return max((float((p.detach() - before).abs().max()) for p, before in zip(
            frozen_parameters(pl_module.pretrained_encoder), self.frozen_at_start, strict=True)), default=0.0)

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == 0:
            self.frozen_moved_in_first_epoch = self._frozen_moved(pl_module)

    def on_fit_end(self, trainer, pl_module):
        weights = torch.cat([p.detach().double().flatten() for p in pl_module.parameters()])
        report = {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "global_step": trainer.global_step,
            "epoch": trainer.current_epoch,
            "weight_sum": weights.sum().item(),
            "weight_abs_sum": weights.abs().sum().item(),
            "turns": getattr(pl_module, "turns", []),
            "frozen_moved_in_first_epoch": self.frozen_moved_in_first_epoch,
            "frozen_moved": self._frozen_moved(pl_module),
            "metrics": {
                key: float(value) for key, value in trainer.callback_metrics.items()
                if torch.is_tensor(value) and value.numel() == 1
            },
        }
        (self.folder / f"ddp_probe.rank{trainer.global_rank}.json").write_text(json.dumps(report))


class StraddlingGAN(GANModule):
    """The GAN with each process's critic loss shifted by a constant, -offset on rank 0 and +offset on rank 1.

    The shift changes no gradient, but puts the two processes' local losses on either side of any
    switcher threshold, so a switcher fed the local loss would send them different turns. The
    turns taken are kept in ``turns`` for the probe.

    Args:
        offset: the shift; the mean over the two processes is the true loss.
        kwargs: ``GANModule``'s options.
    """

    def __init__(self, offset: float = 10.0, **kwargs):
        super().__init__(**kwargs)
        self.offset = offset
        self.turns: list[str] = []

    def critic_loss(self, batch: dict) -> torch.Tensor:
        self.turns.append("critic")
        return super().critic_loss(batch) + (1.0 if self.global_rank else -1.0) * self.offset

    def generator_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        self.turns.append("generator")
        return super().generator_losses(batch)
