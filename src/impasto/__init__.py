"""impasto — neural style transfer (Gatys, Ecker & Bethge) on the original VGG-19.

The public names are imported when first used, so the command line starts (and answers Ctrl-C or a
bad option) before PyTorch has loaded.
"""

import importlib

__version__ = "0.2.0"
__all__ = ["transfer", "TransferConfig", "Progress", "Cancel", "Interrupted", "ImpastoError", "DivergedError"]
_HOME = {"transfer": ".gatys.run", "TransferConfig": ".config", "Progress": ".job", "Cancel": ".job",
         "Interrupted": ".job", "ImpastoError": ".errors", "DivergedError": ".errors"}


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module 'impasto' has no attribute '{name}'")
    value = getattr(importlib.import_module(_HOME[name], __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_HOME])
