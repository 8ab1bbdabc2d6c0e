"""What the machine a run happens on can do: its CPU, bf16 support, GPU.

Results are recorded with this description, because absolute times belong to one machine, and
bf16 arithmetic is only fast where the hardware has it (AVX-512 BF16 or AMX on CPUs, bf16 units
on CUDA GPUs): elsewhere it is emulated and slower than float32.
"""

import os
import platform
from functools import cache

import torch


@cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux lists them (empty where ``/proc/cpuinfo`` is not to be had)."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@cache
def cpu_model() -> str:
    """The CPU's marketing name, e.g. ``AMD EPYC`` or ``Intel(R) Xeon(R) Platinum 8480+``."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_bf16() -> str | None:
    """The CPU's native bf16 instructions: ``AMX`` or ``AVX-512 BF16``; None when it has neither."""
    flags = cpu_flags()
    if "amx_bf16" in flags:
        return "AMX"
    if "avx512_bf16" in flags:
        return "AVX-512 BF16"
    return None


def describe_machine() -> dict:
    """CPU, cores, bf16 support and GPU, as recorded beside every measured result."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cpu_bf16": cpu_bf16(),
        "gpu": gpu,
        "gpu_bf16": bool(gpu) and torch.cuda.is_bf16_supported(),
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def machine_in_words(machine: dict) -> str:
    """``AMD EPYC, 2 cores, AVX-512 BF16, no GPU``: the machine a table was measured on."""
    bf16 = machine.get("cpu_bf16") or "no bf16 instructions"
    gpu = machine.get("gpu") or "no GPU"
    return f"{machine['cpu']}, {machine['cores']} cores, {bf16}, {gpu}"


def native_precision(accelerator: str = "auto") -> str:
    """``bf16-mixed`` where the device runs bf16 natively, ``32-true`` elsewhere.

    A CUDA GPU with bf16 units, or a CPU with AMX or AVX-512 BF16, runs bf16 convolutions and
    matrix products 1.5-2x faster than float32; anywhere else bf16 is emulated, slower than
    float32, and only costs accuracy.

    Args:
        accelerator: the trainer's ``accelerator`` (``auto`` means CUDA when there is one).
    """
    name = str(accelerator).lower()
    on_cuda = name in ("cuda", "gpu") or (name == "auto" and torch.cuda.is_available())
    if on_cuda:
        return "bf16-mixed" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "32-true"
    if name in ("auto", "cpu"):
        return "bf16-mixed" if cpu_bf16() else "32-true"
    return "32-true"
