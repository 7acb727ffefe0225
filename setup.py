"""The C kernels, built with the package; the rest of the project's metadata is in pyproject.toml.

Each is optional: where one does not compile (no C compiler, no Python headers) the install goes on
and its Python user runs its PyTorch or NumPy form instead. All three include src/impasto/_kernels.h
(buffer checks, SIMD helpers, the thread split).
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HEADER = "src/impasto/_kernels.h"


# No debug information: it would record the folder the kernels were built in (the build machine's path)
# inside the compiled module; the code generated is the same without it.
NO_BUILD_PATHS = ["-g0"]


class BuildKernels(build_ext):
    """Python's own link line (sysconfig's LDSHARED) can carry ``-rpath`` to the interpreter's library
    folder, another path of the build machine; the kernels link no library of it, so it goes."""

    def build_extensions(self):
        linker = getattr(self.compiler, "linker_so", None)
        if isinstance(linker, list):
            self.compiler.linker_so = [arg for arg in linker if not arg.startswith("-Wl,-rpath")]
        super().build_extensions()


def kernel(name: str, source: str, flags: list[str]) -> Extension:
    return Extension(name, [source], include_dirs=["src/impasto"], depends=[HEADER],
                     extra_compile_args=flags + NO_BUILD_PATHS, optional=True)


setup(cmdclass={"build_ext": BuildKernels}, ext_modules=[
    # The Winograd F(6x6, 3x3) tile transforms and fused convolution (impasto.net.winograd uses its
    # PyTorch form where this did not build).
    kernel("impasto.net._winograd", "src/impasto/net/_winograd.c", ["-O3", "-fno-math-errno"]),
    # The fast networks' pass on planar float32 images (impasto.fast.planar; PyTorch's modules where
    # this did not build).
    kernel("impasto.fast._transform", "src/impasto/fast/_transform.c", ["-O3", "-fno-math-errno"]),
    # The reliability of an optical flow (impasto.image.flow; its NumPy form where this did not build).
    # No fused multiply-adds: the same values as the NumPy form, bit for bit.
    kernel("impasto.image._flow", "src/impasto/image/_flow.c", ["-O2", "-fno-math-errno", "-ffp-contract=off"]),
])
