"""Exporting a trained network to ONNX or ``torch.export``, checked against the checkpoint's model.

``python cli.py export --ckpt_path last.ckpt --format onnx --output model.onnx`` writes the
network with its normalisation inside the graph, and ``model.json`` beside it with what the graph
expects and what its outputs mean (class names and colours, the vocabulary, how to resize an
input). Then it runs the exported model on sample inputs of two sizes and prints the largest
difference from the checkpoint's model, failing above the tolerance.

What the graphs take and return (images NCHW float32 in [0, 1], any batch size):

- classifier: ``image`` (B, 1, 28, 28) -> ``probabilities`` (B, classes);
- segmenter: ``image`` (B, 3, H, W), any H, W >= 33 -> ``logits`` (B, classes, H, W);
- restoration, super-resolution, GAN (the generator): ``image`` (B, 3, H, W), upsampled to the
  working size as the JSON says -> ``restored`` (B, 3, H, W) in [0, 1];
- language model: ``tokens`` (B, T) int64 (and ``hidden`` for the stateful nets) -> ``logits``
  (B, T, vocabulary) (B, vocabulary for model1) (and the next ``hidden``).
"""

import argparse
import copy
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.export import Dim

from common.errors import UserInputError
from common.imagenet import IMAGENET_MEAN, IMAGENET_STD
from common.sizes import height_width
from modules.classifier import ClassifierModule
from modules.image_to_image import ImageToImageModule
from modules.language_model import LanguageModelModule
from modules.segmentation import SegmentationModule
from predictor import load_predictor

FORMATS = ("onnx", "torch_export")
MIN_SIDE = 33  # the U-Nets' deepest feature map must be at least 2x2 (encoders halve five times)


class Normalized(nn.Module):
    """A network fed images in [0, 1], normalised inside the graph; optionally a function of its output.

    Args:
        net: the network.
        mean: per-channel mean of the normalisation.
        std: per-channel standard deviation.
        output: ``logits``, ``probabilities`` (softmax over dim 1) or ``image`` (de-normalised, in [0, 1]).
    """

    def __init__(self, net: nn.Module, mean, std, output: str = "logits"):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.output = output

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        out = self.net((image - self.mean) / self.std)
        if self.output == "probabilities":
            return out.softmax(dim=1)
        if self.output == "image":
            return (out * self.std + self.mean).clamp(0, 1)
        return out


class Recurrent(nn.Module):
    """A language model's net with its hidden state as an explicit input and output."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, tokens: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(tokens, hidden)


class Stateless(nn.Module):
    """A language model's net that starts from no state (model1, model2): tokens in, logits out."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.net(tokens)[0]


def graph_of(model, datamodule, net: nn.Module) -> tuple[nn.Module, dict, list[tuple], dict]:
    """What to export for a trained module: the graph around ``net``, its description, two sample
    inputs and the dynamic shapes.

    Args:
        model: the trained module.
        datamodule: its datamodule (normalisation statistics, working size).
        net: the network the graph wraps: a plain copy of the module's for export, or the module
            itself, whose own forward is the reference the export is checked against.

    Raises:
        UserInputError: a module this does not export.
    """
    batch = Dim("batch", min=1, max=1024)
    draw = torch.Generator().manual_seed(0)  # the same sample inputs at every export

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=draw)

    if isinstance(model, ClassifierModule):
        graph = Normalized(net, [datamodule.mean], [datamodule.std], "probabilities")
        info = {"task": "classification", "input": "image (B, 1, 28, 28) float32 in [0, 1], white digit on black",
                "output": "probabilities (B, classes)", "class_names": model.hparams.get("class_names")}
        samples = [(rand(2, 1, 28, 28),), (rand(5, 1, 28, 28),)]
        return graph, info, samples, {"image": {0: batch}}
    side = Dim("height", min=MIN_SIDE, max=4096), Dim("width", min=MIN_SIDE, max=4096)
    images = {"image": {0: batch, 2: side[0], 3: side[1]}}
    if isinstance(model, SegmentationModule):
        graph = Normalized(net, IMAGENET_MEAN, IMAGENET_STD, "logits")
        size = datamodule.hparams.image_size
        info = {"task": "segmentation", "input": "image (B, 3, H, W) float32 RGB in [0, 1]",
                "output": "logits (B, classes, H, W); the class of a pixel is their argmax",
                "resize_to": list(height_width(size)) if size is not None else None,
                "class_names": list(model._class_names()), "void_index": model.hparams.ignore_index,
                "palette": model.palette().tolist()}
        return graph, info, [(rand(2, 3, 64, 96),), (rand(1, 3, 97, 131),)], images
    if isinstance(model, ImageToImageModule):
        graph = Normalized(net, IMAGENET_MEAN, IMAGENET_STD, "image")
        hp = datamodule.hparams
        info = {"task": "image restoration", "input": "image (B, 3, H, W) float32 RGB in [0, 1]",
                "output": "restored (B, 3, H, W) float32 RGB in [0, 1]",
                "resize_to_cover": list(height_width(hp.image_size)), "resample": hp.get("upsample", "bilinear"),
                "preprocessing": "resize the damaged image (PIL, keeping its shape) so that it covers resize_to_cover, "
                                 "with the named resampling filter, as training did"}
        return graph, info, [(rand(2, 3, 64, 64),), (rand(1, 3, 97, 131),)], images
    if isinstance(model, LanguageModelModule):
        # The recurrent loops unroll over the tokens when exported, so a graph takes a fixed number
        # of them: one at a time for the stateful nets (the state carries the rest), the context
        # window for the stateless ones.
        length = 1 if model.stateful else model.hparams.context
        vocab = model.hparams.vocab_size
        info = {"task": "language model", "vocab": list(model.hparams.vocab or []),
                "input": f"tokens (B, {length}) int64 indices into vocab, a stream opened by xxbos"}
        first, second = (torch.randint(0, vocab, (rows, length), generator=draw) for rows in (2, 3))
        if model.stateful:
            _, hidden = net(first)
            batch_axis = hidden.dim() - 2  # (layers, B, H) for nn.RNN and nn.GRU, (B, H) for model3
            other = list(hidden.shape)
            other[batch_axis] = 3
            info["input"] += "; hidden: the state the last call returned (zeros to start)"
            info["hidden_shape"] = ["batch" if axis == batch_axis else size for axis, size in enumerate(hidden.shape)]
            info["output"] = f"logits (B, {length}, vocab), and the hidden state to pass to the next call"
            samples = [(first, torch.randn(hidden.shape, generator=draw)), (second, torch.randn(other, generator=draw))]
            return Recurrent(net), info, samples, {"tokens": {0: batch}, "hidden": {batch_axis: batch}}
        info["output"] = "logits (B, vocab) for the next token" if model.predicts_last_only else (
            f"logits (B, {length}, vocab)")
        return Stateless(net), info, [(first,), (second,)], {"tokens": {0: batch}}
    raise UserInputError(
        f"export takes classifiers, segmenters, restoration and super-resolution models, GAN generators and "
        f"language models, not a {type(model).__name__}."
    )


def _plain(net: nn.Module) -> nn.Module:
    """A copy of ``net`` for export, in eval mode and the contiguous layout.

    Weight norm stays a parametrisation (the graph computes each weight from its direction and
    norm): folding it would change the classes the copy shares with the original.
    """
    return copy.deepcopy(net).eval().to(memory_format=torch.contiguous_format)


def export(checkpoint: str, format: str, output: str, tolerance: float = 1e-4) -> float:
    """Exports the checkpoint's network, writes its description next to it, and checks it.

    Returns:
        The largest absolute difference between the exported model and the checkpoint's, over
        the sample inputs.

    Raises:
        UserInputError: unknown format, a missing extra for ONNX, or a difference above ``tolerance``.
    """
    if format not in FORMATS:
        raise UserInputError(f"--format must be one of {', '.join(FORMATS)}, not {format!r}.")
    predictor = load_predictor(checkpoint)
    model = predictor.model
    network = model.net if isinstance(model, LanguageModelModule) else model
    plain = _plain(getattr(model, "net", None) or getattr(model, "generator", None))
    graph, info, samples, dynamic = graph_of(model, predictor.datamodule, plain)
    reference = graph_of(model, predictor.datamodule, network)[0].eval()
    graph.eval()
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = list(dynamic)
    with torch.no_grad():
        expected = [_as_list(reference(*sample)) for sample in samples]
        program = torch.export.export(graph, samples[0], dynamic_shapes=dynamic)
        if format == "torch_export":
            torch.export.save(program, path)
            run = _torch_export_runner(path)
        else:
            _save_onnx(program, names, path)
            run = _onnx_runner(path, names)
    difference = max(float(np.abs(np.asarray(mine) - theirs.numpy()).max())
                     for sample, reference in zip(samples, expected, strict=True)
                     for mine, theirs in zip(run(sample), reference, strict=True))
    info |= {"format": format, "file": path.name, "inputs": names}
    path.with_suffix(".json").write_text(json.dumps(info, indent=2))
    print(f"{path}: {format}, largest difference from the checkpoint's model over {len(samples)} inputs of "
          f"different sizes: {difference:.2e} (tolerance {tolerance:.0e}); description in {path.with_suffix('.json')}")
    if difference > tolerance:
        raise UserInputError(f"the exported model differs from the checkpoint's by {difference:.2e}, "
                             f"more than the tolerance {tolerance:.0e}.")
    return difference


def _as_list(outputs) -> list[torch.Tensor]:
    return list(outputs) if isinstance(outputs, tuple | list) else [outputs]


def _torch_export_runner(path: Path):
    module = torch.export.load(path).module()

    def run(sample: tuple) -> list[np.ndarray]:
        with torch.no_grad():
            return [t.numpy() for t in _as_list(module(*sample))]

    return run


def _save_onnx(program: torch.export.ExportedProgram, names: list[str], path: Path) -> None:
    """Converts the program already exported (its dynamic shapes included), so the network is traced once."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as error:
        raise UserInputError(
            f"--format onnx needs the export extra ({error.name} is missing): pip install -e \".[export]\"."
        ) from error
    onnx_program = torch.onnx.export(program, input_names=names, dynamo=True, verbose=False)
    onnx_program.save(str(path))


def _onnx_runner(path: Path, names: list[str]):
    try:
        import onnxruntime
    except ImportError as error:
        raise UserInputError('checking the ONNX model needs onnxruntime: pip install -e ".[export]".') from error
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda sample: session.run(None, {name: t.numpy() for name, t in zip(names, sample, strict=True)})


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="cli.py export", description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt_path", required=True, help="a checkpoint written by cli.py fit")
    parser.add_argument("--format", default="onnx", choices=FORMATS)
    parser.add_argument("--output", required=True, help="the file to write (.onnx or .pt2); its .json goes beside it")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest difference allowed in the check")
    args = parser.parse_args(argv)
    export(args.ckpt_path, args.format, args.output, args.tolerance)


if __name__ == "__main__":
    main(sys.argv[1:])
