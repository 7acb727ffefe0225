"""Where and how the network runs: device, precision, threads."""

from __future__ import annotations

import ctypes
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


# oneDNN's instruction-set limits (ONEDNN_MAX_CPU_ISA) under which its bf16 kernels are emulated.
_ONEDNN_WITHOUT_BF16 = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI")


def cpu_has_native_bf16() -> bool:
    """AMX-bf16 or AVX512-BF16, and oneDNN allowed to use them: the CPUs on which bf16 convolutions
    beat fp32.

    On CPUs without them (AVX2 only) PyTorch emulates bf16 and is tens of times *slower*; so it is
    where ``ONEDNN_MAX_CPU_ISA`` holds oneDNN below them (e.g. ``AVX2``, as benchmarks run an AVX2
    machine's kernels on a newer CPU).
    """
    if os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper() in _ONEDNN_WITHOUT_BF16:
        return False
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
    """Physical cores, unless OMP_NUM_THREADS says otherwise (a shared machine runs faster on fewer);
    and freed memory kept for reuse (:func:`keep_freed_memory`)."""
    if not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(physical_cores())
    keep_freed_memory()


@functools.lru_cache(maxsize=None)
def keep_freed_memory() -> bool:
    """Ask glibc to serve large blocks from its heap and never give freed memory back to the system.

    Every iteration allocates the network's activations afresh (hundreds of MB at 1024 px); by
    default glibc maps each large block anew and unmaps it when freed, so every iteration pays for
    page faults and for the kernel zeroing the pages. Kept in the heap they are reused: one
    forward+backward pass at 1024×768 (bf16) measured 4.94 → 3.78 s, at 512×384 (fp32, Winograd)
    1.24 → 1.21 s; the price is that the process keeps its peak memory until it exits. No effect
    (False) where the C library is not glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_max = -1, -4  # glibc's mallopt parameter numbers (malloc.h)
        # -1: never trim (a 2 GB threshold still let glibc unmap a transient top of the heap at
        # 1024 px with F(6×6) Winograd buffers: 440k page faults, 0.2 s, per evaluation)
        return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, -1))
    except (OSError, AttributeError):
        return False


MMAP_THRESHOLD = 32 * 2**20  # glibc's largest M_MMAP_THRESHOLD on 64-bit systems


def map_large_blocks(mapped: bool = True) -> bool:
    """Undo :func:`keep_freed_memory` for blocks of 32 MB and more (``mapped``; False sets it back):
    glibc maps each anew and unmaps it when freed. For a scale evaluated over tiles (issue 26): its
    full-size vectors (hundreds of MB at print sizes) come and go every iteration, and L-BFGS's pairs
    stay; kept in the heap, the freed vectors' holes fragment around the pairs and the heap grows by
    more than what is alive (2048 px over 256 px tiles, 6 iterations: peak 2.68 GiB in the heap, 2.57 GiB
    mapped, 418 s against 433 s). Mapping also gives back what the heap kept of earlier scales evaluated
    at once (``malloc_trim``): the 1920 px scale of an 8K run holds 6.7 GiB at once, and that run peaked
    at 11.47 GiB without the trim, 9.40 GiB with it. Set back after the scale, so later jobs of the
    process (the web page's worker) keep their memory for reuse. No effect (False) where the C library
    is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_mmap_threshold, m_mmap_max = -3, -4  # malloc.h
        done = (bool(libc.mallopt(m_mmap_threshold, MMAP_THRESHOLD))
                and bool(libc.mallopt(m_mmap_max, 65536 if mapped else 0)))
        if mapped:
            libc.malloc_trim(0)
        return done
    except (OSError, AttributeError):
        return False


# ---------------------------------------------------------------- memory: refuse what cannot fit, before any work

BASE_BYTES = 2560 * 2**20  # the process with PyTorch and the network loaded (1.0–1.5 GB measured), plus what
# glibc's untrimmed heap holds beyond the peak of live tensors (a 384 px fp32 run peaked at 1.88–1.97 GB
# in most runs, and at 2.45 GB and 2.92 GB once each inside the full test suite, the same command)
# Peak resident bytes per output pixel of a Gatys job: forward and backward of VGG-19 to relu5_1
# with the activations kept for the backward pass, the style image at the same size (measured peaks
# of `impasto transfer` at 256, 512 and 1024 px after 3 iterations lie on a line of 4000 B/px in fp32
# and 3040 B/px in bf16), plus L-BFGS's 30 curvature pairs over the Laplacian pyramid (2 × 30 ×
# 4/3 × 12 B = 960 B/px by the end of a run); rounded up, as peaks vary between runs (glibc's heap:
# 1.46–2.06 GB for the same 384 px run; tests/test_validate.py checks the estimate against one).
# fp32 also holds the Winograd F(6×6) scratch buffers of the batched layers, two of 64/36 × the largest
# one's activations (conv3_2, a quarter of the pixels: 2 × 1.78 × 256 channels × 4 B / 16 ≈ 230 B/px;
# the fused layers need only a few MB); 6000 B/px was measured when conv1_2's were ≈ 900 B/px.
IMAGE_BYTES_PER_PIXEL = {"fp32": 6000, "bf16": 4000}


MEMORY_LIMIT = "IMPASTO_MAX_MEMORY"  # GiB: plan for at most this much (a laptop's share, a shared server)


def available_memory() -> int | None:
    """Bytes the system can still give this process (Linux MemAvailable plus what it holds), at most
    ``IMPASTO_MAX_MEMORY`` GiB where that is set; or None (unknown, no limit set)."""
    limit = memory_limit()
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        free = int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return limit
    import resource

    free += resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return free if limit is None else min(free, limit)


def memory_limit() -> int | None:
    """``IMPASTO_MAX_MEMORY`` in bytes (it is given in GiB), or None where it is not set."""
    text = os.environ.get(MEMORY_LIMIT, "").strip()
    if not text:
        return None
    try:
        gib = float(text)
    except ValueError:
        gib = -1.0
    if not (gib > 0 and gib < 2**20):
        raise ImpastoError(f"{MEMORY_LIMIT} must be a number of GiB above 0, got '{text}'")
    return int(gib * 2**30)


def image_job_bytes(pixels: int, precision: str = "fp32") -> int:
    """Estimated peak memory of optimising an image of ``pixels`` through VGG-19 (CPU)."""
    return BASE_BYTES + IMAGE_BYTES_PER_PIXEL.get(precision, IMAGE_BYTES_PER_PIXEL["fp32"]) * pixels


def check_memory(needed: int, what: str, advice: str) -> None:
    """One line, before any work, when ``needed`` bytes exceed what this machine has free."""
    free = available_memory()
    if free is not None and needed > free:
        raise ImpastoError(f"{what} needs about {needed / 2**30:.1f} GiB of memory and {free_words(free)}; {advice}")


def free_words(free: int) -> str:
    """``free`` bytes in words: what is free, or what ``IMPASTO_MAX_MEMORY`` allows where it is less."""
    limit = memory_limit()
    if limit is not None and free >= limit:
        return f"{MEMORY_LIMIT} allows {free / 2**30:.1f} GiB"
    return f"{free / 2**30:.1f} GiB are free"


def largest_side(side: int, pixels: int, precision: str = "fp32") -> int:
    """The long side, scaled from ``side`` (``pixels`` at that side), whose estimate fits in free memory."""
    free = available_memory() or 0
    per_pixel = IMAGE_BYTES_PER_PIXEL.get(precision, IMAGE_BYTES_PER_PIXEL["fp32"])
    room = max(0, free - BASE_BYTES) / per_pixel
    return max(16, int(side * (room / max(pixels, 1)) ** 0.5))


# A tiled job (issue 26, impasto.loss.tiled) holds full-size only the optimiser's vectors and the targets,
# and one tile's activations at a time. Full size, per pixel: L-BFGS's curvature pairs, kept in bfloat16
# on a tiled scale (impasto.gatys.run.TILED_PAIRS): 2 × 3 channels × 2 B = 12 B/px each over the pixels,
# 4/3 of that over a Laplacian pyramid (the first scale's variable; the scales that refine a result are
# optimised over their pixels); and the rest: the image and its gradient, the variable, its trial point,
# search direction and gradient there, the best image, the content target (relu4_2: 512 channels / 64 ×
# 4 B = 32 B/px), the void and edge maps. Measured (the peak resident bytes of `impasto transfer` over
# 256 px tiles held one at a time, bf16, 2 iterations at 1024 and 2048 px, the slope between them, one
# or two pairs in it): 155 B/px over the pixels (a scale refining the one before), 300 over a pyramid;
# after 6 iterations at 2048 px over the pixels, with the full-size blocks mapped (map_large_blocks),
# about 173 B/px besides the pairs. (A 7680x4320 run with those blocks kept in glibc's heap peaked at
# 13.4 GiB, about 270 B/px besides the pairs: the holes of freed vectors grow the heap.)
# A tile, with its margins: its forward and backward pass through VGG-19 to relu5_1 (the same
# evaluation's peak at 2048 px over 256 and 768 px tiles, held one at a time: 3070 B/px in fp32, 1560
# in bf16; rounded up as the untiled figures are).
# The process itself, without the untiled job's margin for glibc's heap (a tile's activations are small
# beside an untiled job's): 1.50–1.63 GiB measured with the network loaded.
TILED_BASE_BYTES = 1792 * 2**20
PAIR_BYTES_PER_PIXEL = {"pixels": 12, "pyramid": 16}
FULL_BYTES_PER_PIXEL = {"pixels": 200, "pyramid": 320}
TILE_BYTES_PER_PIXEL = {"fp32": 3600, "bf16": 2000}


def tile_bytes_per_pixel(precision: str = "fp32") -> int:
    return TILE_BYTES_PER_PIXEL.get(precision, TILE_BYTES_PER_PIXEL["fp32"])


def full_bytes_per_pixel(pairs: int, pyramid: bool) -> int:
    """The full-size vectors of a tiled job, per pixel, keeping ``pairs`` L-BFGS curvature pairs over the
    pixels or (``pyramid``) a Laplacian pyramid."""
    kind = "pyramid" if pyramid else "pixels"
    return FULL_BYTES_PER_PIXEL[kind] + pairs * PAIR_BYTES_PER_PIXEL[kind]


def tiled_job_bytes(pixels: int, tile_pixels: int, per_pixel: int, precision: str = "fp32") -> int:
    """Estimated peak memory of optimising ``pixels`` over tiles of ``tile_pixels`` (with margins),
    with ``per_pixel`` bytes of full-size vectors (:func:`full_bytes_per_pixel`)."""
    return TILED_BASE_BYTES + per_pixel * pixels + tile_bytes_per_pixel(precision) * tile_pixels


def check_image_memory(config, shape: tuple[int, int], what: str, option: str) -> None:
    """Refuse, before any work, an image of ``shape`` (w, h) that a job of ``config`` (its device and
    precision) could not optimise in this machine's free memory; ``option`` is what sets its size."""
    device = resolve_device(config.device)
    if device.type != "cpu":
        return
    precision = resolve_precision(config.precision, device)
    w, h = shape
    check_memory(image_job_bytes(w * h, precision), f"{what} ({w}x{h} px)",
                 f"the largest {option} that fits is about {largest_side(max(w, h), w * h, precision)}")
