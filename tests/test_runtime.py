"""Tests of impasto.runtime: freed memory kept under glibc, bf16 native only where oneDNN may use the bf16 units."""

import torch


def test_freed_memory_is_kept_where_the_c_library_is_glibc():
    import platform

    from impasto.runtime import keep_freed_memory

    assert keep_freed_memory() == (platform.libc_ver()[0] == "glibc")


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
