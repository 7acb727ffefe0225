"""The ``impasto`` command line. It only parses options, shows progress and writes files;
every default comes from the job's dataclass in :mod:`impasto.config`."""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import MISSING, fields
from typing import Sequence

from . import __version__
from .config import option_fields
from .errors import DivergedError, ImpastoError

# Sub-commands, one module each in impasto/commands/, in the order `impasto --help` lists them.
COMMANDS = ("transfer", "recolor", "presets", "reconstruct", "figure", "audio", "train", "fast", "export")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad option as one line and exit code 2."""

    def error(self, message):
        raise ImpastoError(message)


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got '{text}'") from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def _scales(text: str):
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count or comma-separated sizes, got '{text}'") from None
    return values[0] if len(values) == 1 else values


def _parser_for(annotation: str, default):
    """argparse ``type`` for a dataclass field, from its annotation."""
    if annotation.startswith("tuple[str"):
        return _names
    if annotation.startswith("tuple[float"):
        return _floats
    if annotation.startswith("tuple[int"):
        return _scales
    if annotation.startswith("int"):
        return int
    if annotation.startswith("float"):
        return float
    return str


def add_config_options(parser: argparse.ArgumentParser, cls) -> None:
    """One ``--option`` per dataclass field, with its default and help text."""
    for f in option_fields(cls):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not MISSING else None
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        help_text = f"{f.metadata['help']} (default: {shown})"
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
            continue
        if "nargs" in f.metadata:  # a repeatable option taking several values, e.g. STYLE LAYERS
            parser.add_argument(flag, nargs=f.metadata["nargs"], action="append", default=None,
                                help=help_text, metavar=f.metadata["metavar"])
            continue
        parser.add_argument(flag, type=_parser_for(str(f.type), default), default=None,
                            choices=f.metadata.get("choices"), help=help_text, metavar=f.name.upper())


def config_from_args(args: argparse.Namespace, cls, base=None):
    """The dataclass with every option the user gave replacing its default."""
    base = base or cls()
    given = {f.name: getattr(args, f.name) for f in fields(cls)
             if getattr(args, f.name, None) is not None}
    return base.replace(**given)


# ---------------------------------------------------------------- running an image job

def close_bar(bar) -> None:
    if bar is not None:
        bar.close()


def run_image_job(job, output, bar, quiet: bool) -> int:
    """Run ``job()`` -> PIL image and write it to ``output``; Ctrl-C writes the latest result (130)."""
    from .imageio import save_image
    from .optimize import Interrupted

    try:
        image = job()
    except Interrupted as stop:
        close_bar(bar)
        save_image(stop.image, output)
        print(f"interrupted: latest result written to {output}", file=sys.stderr)
        return 130
    close_bar(bar)
    save_image(image, output)
    if not quiet:
        print(f"wrote {output} ({image.width}x{image.height})", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- entry point

def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="impasto", description="Neural style transfer on the original VGG-19.")
    parser.add_argument("--version", action="version", version=f"impasto {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f"impasto.commands.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.run(args)
    except DivergedError as exc:
        print(f"impasto: error: {exc}", file=sys.stderr)
        return 1
    except ImpastoError as exc:
        print(f"impasto: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("impasto: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
