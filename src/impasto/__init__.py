"""impasto — neural style transfer (Gatys, Ecker & Bethge) on the original VGG-19."""

from .config import TransferConfig
from .errors import DivergedError, ImpastoError
from .gatys import transfer
from .job import Cancel, Interrupted, Progress

__all__ = ["transfer", "TransferConfig", "Progress", "Cancel", "Interrupted", "ImpastoError", "DivergedError"]
__version__ = "0.2.0"
