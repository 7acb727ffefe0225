"""Trained transform networks on disk: ``.pt`` files written by ``impasto train`` (and bundled ones
in the package's ``data/models``), loaded back for ``impasto fast`` and ``impasto export``.

A model file is a ``torch.save`` dict: ``format``, ``width``, ``styles`` (names, in the order of the
conditional instance-norm rows), ``state_dict`` and ``meta`` (training settings, for the record).
Loading uses ``weights_only=True``: a model file can carry no code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from typing import TYPE_CHECKING

from ..errors import ImpastoError
from ..atomic import atomic_write

if TYPE_CHECKING:  # PyTorch loads with a model, not with the names and paths (`impasto fast` on onnxruntime)
    from .network import TransformNet

FORMAT = "impasto-fast/1"
MODEL_SUFFIXES = (".pt", ".onnx")


@dataclass
class FastModel:
    net: TransformNet
    styles: list[str]
    meta: dict = field(default_factory=dict)

    def payload(self) -> dict:
        return {"format": FORMAT, "width": self.net.width, "styles": list(self.styles),
                "state_dict": {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()},
                "meta": dict(self.meta)}


def bundled_dir() -> Path:
    return Path(str(resources.files("impasto") / "data" / "models"))


def bundled_models() -> list[str]:
    folder = bundled_dir()
    return sorted(p.stem for p in folder.glob("*.pt")) if folder.is_dir() else []


def resolve_model_path(name: str | os.PathLike) -> Path:
    """A path to a ``.pt``/``.onnx`` file, or the name of a bundled model (``starry_night``)."""
    path = Path(name)
    if path.suffix.lower() in MODEL_SUFFIXES or path.exists():
        if not path.is_file():
            raise ImpastoError(f"{path}: no such model file")
        return path
    bundled = bundled_dir() / f"{name}.pt"
    if bundled.is_file():
        return bundled
    known = ", ".join(bundled_models()) or "none"
    raise ImpastoError(f"{name}: no such model file or bundled model (bundled: {known})")


def save_model(model: FastModel, path: str | os.PathLike) -> Path:
    import torch

    payload = model.payload()
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def model_from_payload(payload: dict, source: str = "model") -> FastModel:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ImpastoError(f"{source}: not an impasto fast model (format {FORMAT} expected)")
    import torch

    from .network import TransformNet

    styles = list(payload["styles"])
    net = TransformNet(float(payload["width"]), len(styles))
    try:
        net.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise ImpastoError(f"{source}: weights do not fit the network ({str(exc).splitlines()[0]})") from None
    bad = next((name for name, w in net.state_dict().items() if w.is_floating_point() and not torch.isfinite(w).all()),
               None)
    if bad is not None:
        raise ImpastoError(f"{source}: weight {bad} holds NaN or inf (a training run that diverged); train again "
                           f"with a lower --lr or --style-weight")
    net.eval().requires_grad_(False)
    return FastModel(net, styles, dict(payload.get("meta", {})))


def load_model(name: str | os.PathLike) -> FastModel:
    """Load a ``.pt`` model file or a bundled model by name."""
    path = resolve_model_path(name)
    if path.suffix.lower() == ".onnx":
        raise ImpastoError(f"{path}: an ONNX model runs with `impasto fast`, it cannot be loaded into PyTorch")
    import torch

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: one clear line
        raise ImpastoError(f"{path}: cannot read model file ({type(exc).__name__})") from None
    return model_from_payload(payload, str(path))
