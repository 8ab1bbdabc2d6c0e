"""Reader for the IDX format that MNIST ships in (plain or gzip-compressed)."""

import gzip
from pathlib import Path

import numpy as np
import torch

from common.errors import UserInputError

# IDX magic: two zero bytes, a type code (0x08 = unsigned byte), then the number of dimensions.
_UNSIGNED_BYTE = 0x08


def read_idx(path: Path, expected_dims: int) -> torch.Tensor:
    """Reads an unsigned-byte IDX file into a uint8 tensor of its declared shape.

    Raises:
        UserInputError: the file is not IDX, has another number of dimensions, or is truncated.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as error:
        raise UserInputError(f"Cannot read MNIST file {path}: {error}.") from error
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != _UNSIGNED_BYTE:
        raise UserInputError(
            f"{path} is not an unsigned-byte IDX file (its first bytes are {raw[:4].hex() or 'missing'}, "
            f"expected 0000 08 0{expected_dims}). Replace it with the original MNIST file."
        )
    dims = raw[3]
    if dims != expected_dims:
        raise UserInputError(f"{path} has {dims} dimensions; an MNIST file of this kind has {expected_dims}.")
    header_end = 4 + 4 * dims
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    payload = len(raw) - header_end
    if len(raw) < header_end or payload != int(np.prod(shape)):
        raise UserInputError(
            f"{path} is truncated or padded: its header declares shape {shape} "
            f"({int(np.prod(shape))} bytes) but it holds {max(payload, 0)} bytes of data."
        )
    array = np.frombuffer(raw, dtype=np.uint8, offset=header_end).reshape(shape)
    return torch.from_numpy(array.copy())


def write_idx(path: Path, array: np.ndarray) -> None:
    """Writes a uint8 array as IDX (gzip-compressed when ``path`` ends in ``.gz``)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, _UNSIGNED_BYTE, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as handle:
        handle.write(header + array.tobytes())
