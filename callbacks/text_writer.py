"""Writes ``predict`` continuations of text prompts to a file."""

from pathlib import Path

from lightning.pytorch.callbacks import BasePredictionWriter

from callbacks.prediction_writers import rank_suffixed


class ContinuationWriter(BasePredictionWriter):
    """One block per prompt: the prompt, its greedy continuation and a sampled one.

    Args:
        output_file: text file to write; its folder is created.
    """

    def __init__(self, output_file: str = "predictions/continuations.txt"):
        super().__init__(write_interval="epoch")
        self.output_file = Path(output_file)

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices) -> None:
        path = rank_suffixed(self.output_file, trainer)
        path.parent.mkdir(parents=True, exist_ok=True)
        blocks = [
            f"prompt:  {p['prompt']}\ngreedy:  {p['prompt']} {p['greedy']}\nsampled: {p['prompt']} {p['sampled']}\n"
            for p in predictions
        ]
        path.write_text("\n".join(blocks))
