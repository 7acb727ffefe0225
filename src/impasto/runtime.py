"""Where and how the network runs: device, precision, threads."""

from __future__ import annotations

import functools
import os

import torch

from .errors import ImpastoError


@functools.lru_cache(maxsize=None)
def cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_native_bf16() -> bool:
    """AMX-bf16 or AVX512-BF16: the CPUs on which bf16 convolutions beat fp32.

    On CPUs without them (AVX2 only) PyTorch emulates bf16 and is tens of times *slower*.
    """
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ImpastoError(f"unknown device '{name}'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ImpastoError(f"device '{name}' requested but no CUDA GPU is available")
    return device


def resolve_precision(name: str, device: torch.device) -> str:
    """``auto`` -> bf16 where the hardware computes it natively, else fp32."""
    if name in ("fp32", "bf16"):
        return name
    if name != "auto":
        raise ImpastoError(f"precision must be auto, fp32 or bf16, not '{name}'")
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp32"
    return "bf16" if cpu_has_native_bf16() else "fp32"


def physical_cores() -> int:
    """Cores this process may use, counting hyper-threads once."""
    try:
        cpus = os.sched_getaffinity(0)
    except AttributeError:
        return os.cpu_count() or 1
    seen = set()
    for cpu in cpus:
        path = f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list"
        try:
            with open(path) as f:
                seen.add(f.read().strip())
        except OSError:
            seen.add(str(cpu))
    return max(1, len(seen))


def set_threads() -> None:
    """Physical cores, unless OMP_NUM_THREADS says otherwise (a shared machine runs faster on fewer)."""
    if not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(physical_cores())
