"""Tests of impasto.runtime: freed memory kept under glibc and given back for tiled scales, bf16 native only where
oneDNN may use the bf16 units."""

import torch


def test_freed_memory_is_kept_where_the_c_library_is_glibc():
    import platform

    from impasto.runtime import keep_freed_memory

    assert keep_freed_memory() == (platform.libc_ver()[0] == "glibc")


def _resident() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


def test_mapping_large_blocks_gives_back_what_the_heap_kept():
    """A block freed into the kept heap stays resident until a tiled scale maps large blocks, which
    gives it back to the system (issue 26: an untiled scale's memory under the tiled ones)."""
    import platform

    import pytest

    from impasto.runtime import keep_freed_memory, map_large_blocks

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc's heap only")
    assert keep_freed_memory()
    block = torch.ones(64 * 2**20)  # 256 MB, every page touched
    del block
    kept = _resident()
    try:
        assert map_large_blocks()
        assert kept - _resident() > 200 * 2**20
    finally:
        map_large_blocks(False)


def test_bf16_is_native_only_where_onednn_may_use_the_bf16_units(monkeypatch):
    """`--precision auto` picks bf16 on AMX/AVX512-BF16 CPUs, but not when ONEDNN_MAX_CPU_ISA holds
    oneDNN below them (its bf16 would then be emulated, tens of times slower than fp32)."""
    from impasto import runtime

    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx2", "fma", "amx_bf16"}))
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert runtime.cpu_has_native_bf16()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx2")
    assert not runtime.cpu_has_native_bf16()
    assert runtime.resolve_precision("auto", torch.device("cpu")) == "fp32"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")
    assert runtime.cpu_has_native_bf16()
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert not runtime.cpu_has_native_bf16()


def test_memory_limit_caps_what_the_jobs_plan_for(monkeypatch):
    """IMPASTO_MAX_MEMORY (GiB) caps the free memory every check and tile choice plans for; a bad
    value is one clear error."""
    import pytest

    from impasto import runtime
    from impasto.errors import ImpastoError

    monkeypatch.delenv(runtime.MEMORY_LIMIT, raising=False)
    free = runtime.available_memory()
    monkeypatch.setenv(runtime.MEMORY_LIMIT, "0.5")
    assert runtime.available_memory() == (2**29 if free is None else min(free, 2**29))
    with pytest.raises(ImpastoError, match="IMPASTO_MAX_MEMORY allows 0.5 GiB"):
        runtime.check_memory(2**30, "a picture", "a smaller one")
    for bad in ("lots", "-1", "0", "nan"):
        monkeypatch.setenv(runtime.MEMORY_LIMIT, bad)
        with pytest.raises(ImpastoError, match="IMPASTO_MAX_MEMORY must be a number of GiB above 0"):
            runtime.available_memory()


def test_memory_limit_makes_a_picture_tile(monkeypatch):
    """A picture that fits in free memory at once is evaluated over tiles under a lower limit: the
    largest tile that fits, as many held as fit."""
    from impasto import TransferConfig, runtime
    from impasto.gatys.inputs import tile_side

    layers = ("relu4_2", "relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    config = TransferConfig(size=1024, precision="fp32", device="cpu")
    monkeypatch.setenv(runtime.MEMORY_LIMIT, "1000")
    per_pixel = runtime.full_bytes_per_pixel(30, pyramid=True)
    assert tile_side(config, (1024, 768), layers, per_pixel) is None or runtime.available_memory() < 8 * 2**30
    monkeypatch.setenv(runtime.MEMORY_LIMIT, "4")
    side = tile_side(config, (1024, 768), layers, per_pixel)
    assert side is not None and 64 <= side < 1024 and side % 16 == 0
    room = 4 * 2**30 - runtime.tiled_job_bytes(1024 * 768, 0, per_pixel, "fp32")
    assert (side + 160) ** 2 * runtime.tile_bytes_per_pixel("fp32") <= room
