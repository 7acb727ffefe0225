"""The ``impasto`` command line. It only parses options, shows progress and writes files;
every default comes from the job's dataclass in :mod:`impasto.config`."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
import threading
from dataclasses import MISSING, fields
from typing import Any, Callable, Sequence

from .. import __version__
from ..config import option_fields, parser_of
from ..errors import DivergedError, ImpastoError

# Sub-commands, one module each in impasto/cli/, in the order `impasto --help` lists them.
COMMANDS = ("transfer", "recolor", "presets", "reconstruct", "figure", "audio", "train", "fast", "export", "video",
            "serve")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad option as one line and exit code 2."""

    def error(self, message):
        raise ImpastoError(message)


def _arg_type(parse):
    """An option's parser (:func:`impasto.config.parser_of`) as an argparse ``type``."""
    def convert(text: str):
        try:
            return parse(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"invalid {parse.kind} value: '{text}'") from None
    return convert


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
        parser.add_argument(flag, type=_arg_type(parser_of(f)), default=None,
                            choices=f.metadata.get("choices"), help=help_text, metavar=f.name.upper())


def config_from_args(args: argparse.Namespace, cls, base=None):
    """The dataclass with every option the user gave replacing its default."""
    base = base or cls()
    given = {f.name: getattr(args, f.name) for f in fields(cls) if getattr(args, f.name, None) is not None}
    for f in option_fields(cls):  # repeated options (STYLE LAYERS) arrive as lists of texts
        if "nargs" in f.metadata and f.name in given:
            given[f.name] = parser_of(f)(given[f.name])
    return base.replace(**given)


# ---------------------------------------------------------------- the one runner of every job

def add_run_options(parser: argparse.ArgumentParser) -> None:
    """``--quiet`` and ``--progress``, the same on every sub-command that runs a job."""
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no closing line")
    parser.add_argument("--progress", choices=("bar", "json"), default="bar",
                        help="bar: a progress bar on stderr; json: instead one JSON line per event on stderr "
                             "(progress, then the result or the interruption), for scripts (default: bar)")


def run_job(args, job: Callable, write: Callable[[Any], str],
            write_partial: Callable[[Any], str] | None = None) -> int:
    """Run ``job(show)`` — ``show`` the bar or the JSON lines, None with ``--quiet`` — then ``write``
    its result; a stopped job (Ctrl-C: :class:`~impasto.job.Interrupted`) has its partial result
    written by ``write_partial`` (default ``write``). Both write atomically and return the line to
    print. Returns the exit code: 0, or 130 when stopped (1 and 2 come from :func:`main`)."""
    from ..job import Interrupted
    from .progress import JsonLines, ProgressBar

    show = JsonLines() if args.progress == "json" else None if args.quiet else ProgressBar()
    try:
        result = job(show)
    except Interrupted as stop:
        _close(show)
        message = "nothing finished to keep" if stop.partial is None else (write_partial or write)(stop.partial)
        _say(args, "interrupted", f"interrupted: {message}")
        return 130
    finally:
        _close(show)
    message = write(result)
    if not args.quiet:
        _say(args, "result", message)
    return 0


def _close(show) -> None:
    if show is not None:
        show.close()


def _say(args, event: str, message: str) -> None:
    if args.progress == "json":
        message = json.dumps({"event": event, "message": message})
    print(message, file=sys.stderr, flush=True)


def image_writer(output, interrupted: bool = False) -> Callable:
    """``write`` for a job whose result is a PIL image: saved atomically to ``output``."""
    from ..image.imageio import save_image

    def write(image) -> str:
        save_image(image, output)
        return (f"latest result written to {output}" if interrupted
                else f"wrote {output} ({image.width}x{image.height})")

    return write


# ---------------------------------------------------------------- entry point

def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or only the sub-command ``only`` (its module alone imported: a
    one-image `impasto fast` starts that much sooner; its options and messages are the same)."""
    parser = _Parser(prog="impasto", description="Neural style transfer on the original VGG-19.")
    parser.add_argument("--version", action="version", version=f"impasto {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMANDS if only is None else (only,):
        importlib.import_module(f"impasto.cli.{name}").add_parser(sub)
    return parser


def _importing(frame) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _ctrl_c_when_safe(signum, frame) -> None:
    """Ctrl-C before a job has taken it over (:func:`impasto.job.ctrl_c_sets`): KeyboardInterrupt, but
    never inside an import — raised there from within a C extension's start-up (PyTorch's, pybind11)
    it aborts the process instead of ending it; it then waits for the import, looking every 50 ms."""
    if _importing(frame) and hasattr(signal, "setitimer"):
        signal.signal(signal.SIGALRM, _ctrl_c_when_safe)
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        return
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    own = threading.current_thread() is threading.main_thread() and \
        signal.getsignal(signal.SIGINT) is signal.default_int_handler  # not where Ctrl-C is ignored
    if own:
        signal.signal(signal.SIGINT, _ctrl_c_when_safe)
    try:
        args = build_parser(argv[0] if argv and argv[0] in COMMANDS else None).parse_args(argv)
        return args.run(args)
    except DivergedError as exc:
        print(f"impasto: error: {exc}", file=sys.stderr)
        return 1
    except ImpastoError as exc:
        print(f"impasto: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before a job could keep anything (loading), or Ctrl-C pressed twice
        print("impasto: interrupted", file=sys.stderr)
        return 130
    finally:
        if own:
            if hasattr(signal, "setitimer"):
                signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGINT, signal.default_int_handler)


def run() -> None:
    """The console entry point (``impasto``, ``python -m impasto``): :func:`main`, then exit with its
    code. After Ctrl-C (130) the process ends at once: a KeyboardInterrupt that landed inside an
    import (PyTorch loading) can otherwise make the interpreter end itself by SIGINT at shutdown,
    after the message was printed; every output is already written or removed by then."""
    code = main()
    if code == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(code)


if __name__ == "__main__":
    run()
