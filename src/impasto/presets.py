"""Presets: named sets of ``impasto transfer`` options in TOML.

The shipped ones are in ``impasto/data/presets.toml``; a user's own file has the same form and its
presets replace shipped ones of the same name. Each preset is a table with a one-line
``description`` and any :class:`~impasto.config.TransferConfig` options, spelt like the fields
(``style_layers = ["relu1_1", "relu2_1"]``). Precedence: the dataclass defaults < the preset <
options given explicitly.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path

from .config import TransferConfig, option_fields, parser_of
from .errors import ImpastoError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    options: dict           # field name -> value, already of the field's type
    source: str             # the file it came from


def shipped_file():
    return resources.files("impasto") / "data" / "presets.toml"


def load(source, text: str | None = None) -> dict[str, Preset]:
    """Parse a presets file (``text`` if given, else read ``source``) and check every option."""
    try:
        data = tomllib.loads(text if text is not None else Path(source).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ImpastoError(f"{source}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ImpastoError(f"{source}: unreadable ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ImpastoError(f"{source}: not valid TOML ({exc})") from None
    presets = {}
    for name, table in data.items():
        if not isinstance(table, dict):
            raise ImpastoError(f"{source}: '{name}' must be a table [{name}] of options")
        options = dict(table)
        description = options.pop("description", "")
        if not isinstance(description, str):
            raise ImpastoError(f"{source}: [{name}] description must be a string")
        presets[name] = Preset(name, description, {k: coerce(source, name, k, v) for k, v in options.items()},
                               str(source))
    return presets


def available(user_file: str | os.PathLike | None = None) -> dict[str, Preset]:
    """The shipped presets, then the user's (replacing shipped ones of the same name)."""
    shipped = shipped_file()
    presets = load("impasto/data/presets.toml", shipped.read_text(encoding="utf-8"))
    if user_file is not None:
        presets.update(load(user_file))
    return presets


def get(name: str, user_file: str | os.PathLike | None = None) -> Preset:
    presets = available(user_file)
    if name not in presets:
        raise ImpastoError(f"unknown preset '{name}': choose from {', '.join(presets)} (impasto presets lists them)")
    return presets[name]


def config_for(name: str | None, user_file: str | os.PathLike | None = None,
               base: TransferConfig | None = None) -> TransferConfig:
    """``base`` (default: the defaults) with the preset's options applied; ``None``: no preset."""
    base = base or TransferConfig()
    if name is None:
        if user_file is not None:
            available(user_file)  # a file given is read and checked even when no preset is picked
        return base
    return base.replace(**get(name, user_file).options)


# ---------------------------------------------------------------- option values

_FIELDS = {f.name: f for f in option_fields(TransferConfig)}


def coerce(source, preset: str, key: str, value):
    """A TOML value as the field's type — by the same parser as the command line's
    (:func:`impasto.config.parser_of`) — or a one-line error naming the file, preset and option."""
    where = f"{source}: [{preset}] {key}"
    if key not in _FIELDS:
        raise ImpastoError(f"{where}: unknown option (see impasto transfer --help)")
    field = _FIELDS[key]
    parse = parser_of(field)
    try:
        value = parse(value)
    except (TypeError, ValueError):
        raise ImpastoError(f"{where}: expected {parse.kind}, got {value!r}") from None
    choices = field.metadata.get("choices")
    if choices and value not in choices:
        raise ImpastoError(f"{where}: must be one of {', '.join(choices)}, not {value!r}")
    return value


def describe(preset: Preset) -> list[str]:
    """The preset's options as ``name = value`` lines, in the order of the dataclass."""
    order = [f.name for f in fields(TransferConfig)]
    return [f"{k} = {preset.options[k]!r}" for k in sorted(preset.options, key=order.index)]
