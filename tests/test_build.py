"""The C kernels as built: they carry no path of the machine that built them."""

import importlib
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ["impasto.net._winograd", "impasto.fast._transform", "impasto.image._flow"]


@pytest.mark.parametrize("name", KERNELS)
def test_a_built_kernel_names_no_folder_of_the_build_machine(name):
    module = importlib.import_module(name)  # make test builds all three: a missing one fails here
    data = Path(module.__file__).read_bytes()
    folders = {str(ROOT), sys.prefix, sys.base_prefix, sysconfig.get_config_var("LIBDIR") or str(ROOT)}
    found = [folder for folder in folders if folder.encode() in data]
    assert not found, f"{module.__file__} holds {found}"
