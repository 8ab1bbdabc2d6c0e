"""Augmentations applied to whole batches of tensors, on whatever device the batch is on."""

import lightning.pytorch as pl
import torch
import torch.nn.functional as F


def random_pad_crop(
    images: torch.Tensor, padding: int, mode: str = "zeros", generator: torch.Generator | None = None
) -> torch.Tensor:
    """Pads each image by ``padding`` and crops it back to its size at a random offset.

    The lesson's ``rand_pad(padding=3, size=28, mode='zeros')`` for MNIST, done for a whole batch
    with one gather instead of one crop per image.

    Args:
        images: (B, C, H, W) floating-point batch.
        padding: pixels added on every side; offsets are drawn from [0, 2 * padding].
        mode: ``zeros`` (black border, the lesson's choice for digits) or ``reflect``.
        generator: optional CPU random generator for the offsets, for reproducible crops.
    """
    if padding == 0:
        return images
    batch, _, height, width = images.shape
    if mode not in ("zeros", "reflect"):
        raise ValueError(f"unknown padding mode {mode!r}; expected 'zeros' or 'reflect'")
    padded = F.pad(images, (padding,) * 4, mode="constant" if mode == "zeros" else "reflect")  # (B, C, H+2p, W+2p)
    # Offsets are drawn on the CPU (a handful of integers) so one generator serves any device.
    shift = torch.randint(0, 2 * padding + 1, (2, batch), generator=generator).to(images.device)
    rows = shift[0, :, None] + torch.arange(height, device=images.device)  # (B, H)
    cols = shift[1, :, None] + torch.arange(width, device=images.device)  # (B, W)
    batch_index = torch.arange(batch, device=images.device)[:, None, None]  # (B, 1, 1)
    crops = padded.permute(0, 2, 3, 1)[batch_index, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return crops.permute(0, 3, 1, 2).contiguous()  # (B, C, H, W)


def random_rotate_scale(
    images: torch.Tensor, degrees: float, scale: tuple[float, float] = (1.0, 1.0),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Turns each image by a random angle in [-degrees, degrees] and zooms it by a random factor
    in ``scale``, about its centre, with a black surround.

    One ``affine_grid`` and ``grid_sample`` for the whole batch: albumentations' ``Affine`` does
    the same one image at a time, which at about 140 us per 28x28 digit on a CPU core would double
    an MNIST epoch.

    Args:
        images: (B, C, H, W) floating-point batch.
        degrees: largest turn either way; 0 with ``scale`` (1, 1) returns ``images`` untouched.
        scale: smallest and largest zoom (above 1 enlarges the digit).
        generator: optional CPU random generator, for reproducible draws.
    """
    low, high = scale
    if degrees == 0 and low == high == 1.0:
        return images
    batch = images.shape[0]
    angle = torch.deg2rad((torch.rand(batch, generator=generator) * 2 - 1) * degrees)
    zoom = low + torch.rand(batch, generator=generator) * (high - low)
    # affine_grid maps each output pixel to where it is read from: the inverse turn and zoom.
    cos, sin, zero = torch.cos(angle) / zoom, torch.sin(angle) / zoom, torch.zeros(batch)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta.to(images), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def augmentation_seed(trainer: "pl.Trainer | None") -> int:
    """A seed for a datamodule's augmentation: the run's seed (``seed_everything``), one per process.

    Albumentations and NumPy draw from generators of their own, which ``seed_everything`` does
    not reach; seeded from this, a seeded run augments the same way every time.
    """
    rank = trainer.global_rank if trainer is not None else 0
    return (torch.initial_seed() + rank) % 2**32
