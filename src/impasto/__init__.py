"""impasto — neural style transfer (Gatys, Ecker & Bethge) on the original VGG-19."""

from .config import TransferConfig
from .errors import DivergedError, ImpastoError
from .optimize import Interrupted, Progress
from .transfer import transfer

__all__ = ["transfer", "TransferConfig", "Progress", "Interrupted", "ImpastoError", "DivergedError"]
__version__ = "0.1.0"
