"""A callback for the DDP tests: each process writes a digest of its weights and its metrics."""

import json
from pathlib import Path

import lightning.pytorch as pl
import torch


class WeightDigest(pl.Callback):
    """On fit end, writes ``ddp_probe.rank<N>.json`` with a weight checksum and the logged metrics.

    Args:
        folder: where to write the files.
    """

    def __init__(self, folder: str = "."):
        self.folder = Path(folder)

    def on_fit_end(self, trainer, pl_module):
        weights = torch.cat([p.detach().double().flatten() for p in pl_module.parameters()])
        report = {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "global_step": trainer.global_step,
            "weight_sum": weights.sum().item(),
            "weight_abs_sum": weights.abs().sum().item(),
            "metrics": {
                key: float(value) for key, value in trainer.callback_metrics.items()
                if torch.is_tensor(value) and value.numel() == 1
            },
        }
        (self.folder / f"ddp_probe.rank{trainer.global_rank}.json").write_text(json.dumps(report))
