"""A callback that notes when a validation metric first reaches a target, in wall-clock seconds."""

import time

import lightning.pytorch as pl


class AccuracyClock(pl.Callback):
    """Records seconds since fit start at every validation, and the first time ``metric >= target``.

    Args:
        metric: logged metric to watch, e.g. ``val/acc``.
        target: value to reach.
    """

    def __init__(self, metric: str = "val/acc", target: float = 0.995):
        self.metric = metric
        self.target = target
        self.started = 0.0
        self.history: list[tuple[int, float, float]] = []  # (epoch, seconds, value)
        self.reached_after: float | None = None

    def on_fit_start(self, trainer, pl_module):
        self.started = time.perf_counter()

    def on_validation_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking or self.metric not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.metric])
        seconds = time.perf_counter() - self.started
        self.history.append((trainer.current_epoch, seconds, value))
        if self.reached_after is None and value >= self.target:
            self.reached_after = seconds

    def report(self) -> str:
        lines = [
            f"epoch {epoch:3d}  {seconds:7.1f} s  {self.metric} {value:.4f}" for epoch, seconds, value in self.history
        ]
        reached = f"{self.reached_after:.1f} s" if self.reached_after is not None else "not reached"
        lines.append(f"{self.metric} >= {self.target}: {reached}")
        return "\n".join(lines)
