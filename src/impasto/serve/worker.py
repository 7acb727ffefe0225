"""The one worker process: it owns the network and runs one job at a time, through the job model.

The server (:mod:`.queue`) starts it with :class:`WorkerProcess` (multiprocessing, spawn: a fresh
interpreter, so the server itself never loads PyTorch) and talks to it over two pipes:

    server -> worker   {"op": "run", "id", "dir", "method", "mode", "options", "content", "styles", "model",
                        "names", "preview_every", "max_frames"}, {"op": "cancel", "id"}, {"op": "stop"}
    worker -> server   {"type": "ready"}, {"type": "started", "id"},
                       {"type": "progress", "id", "progress": {...}, "losses": {...}, "preview": bool}
                        (progress: :meth:`impasto.job.Progress.to_dict` less its losses, sent beside
                        it, and its extra figures; a video's also with "finished", the newest finished
                        frame, and "fpm", the frames a minute so far),
                       {"type": "ended", "id", "state": "done" | "cancelled" | "failed", "message",
                        "result": bool}

A job is :func:`impasto.gatys.transfer` (``method`` "transfer"),
:func:`impasto.fast.stylise.stylise_files` (``method`` "fast") or :func:`impasto.video.fast.fast_video`
/ :func:`impasto.video.optimise.optimise_video` (``method`` "video", ``mode`` "fast" / "optimisation") with
a callback and a :class:`~impasto.job.Cancel` token; the worker's main thread reads the commands and sets the token
of the running job on "cancel", so it stops within one iteration and its
:class:`~impasto.job.Interrupted` ``.partial`` becomes the result. Every ``preview_every``
iterations the current image is written to the job's ``preview.jpg``; a video job writes each
finished frame there instead (the event that hands the frame over, :mod:`impasto.video.cache`),
and its result is ``result.mp4`` (H.264, yuv420p: cropped to even sizes so that browsers play it,
with the clip's sound) — a stopped one keeps the frames made so far as a shorter video. The worker
writes only images and videos into the job's folder; its ``job.json`` is the server's alone. Its
messages name the job's inputs as the client named its uploads (``names``: file -> that name) and
never a path of the server's.

:func:`build_config` is the one place a job's options become a :class:`~impasto.config.TransferConfig`
or :class:`~impasto.config.FastConfig` (with a :class:`~impasto.config.VideoConfig` for a video): the server calls it to refuse bad options before a job is
queued (the same one-line messages as the command line), the worker to run it.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import sys
import threading
import traceback
from pathlib import Path

from ..config import FastConfig, TransferConfig, VideoConfig, check_options, parser_of
from ..errors import ImpastoError

METHODS = ("transfer", "fast", "video")
VIDEO_MODES = ("fast", "optimisation")
# The options each kind of job uses: the image options by TransferConfig / FastConfig, the video
# ones by VideoConfig. A kind of job accepts ACCEPTED[method] (the page may send them all) and uses
# OPTIONS[kind].
IMAGE_OPTIONS = ("preset", "size", "ratio", "iterations", "color", "seed")
VIDEO_OPTIONS = {"fast": ("temporal_features", "temporal"), "optimisation": ("frame_iterations", "temporal_weight")}
OPTIONS = {"transfer": IMAGE_OPTIONS, "fast": ("size", "color"),
           "video-fast": ("size", "color", "temporal_features", "temporal"),
           "video-optimisation": (*IMAGE_OPTIONS, "frame_iterations", "temporal_weight")}
ACCEPTED = {"transfer": IMAGE_OPTIONS, "fast": IMAGE_OPTIONS,
            "video": (*IMAGE_OPTIONS, "temporal_features", "temporal", "frame_iterations", "temporal_weight")}
ALL_OPTIONS = ACCEPTED["video"]
VIDEO_OUTPUT = "result.mp4"


def kind_of(method: str, mode: str | None = None) -> str:
    """"transfer", "fast", "video-fast" or "video-optimisation": what :data:`OPTIONS` is keyed by."""
    return f"video-{mode}" if method == "video" else method


# ---------------------------------------------------------------- options -> a job's config

def build_config(method: str, options: dict, mode: str | None = None):
    """The config of a job from the page's options (names as :data:`OPTIONS`, JSON values), read by
    each field's own parser and checked by :func:`impasto.config.check_options`: bad input raises
    one :class:`ImpastoError` line, the command line's. A video job (``method`` "video", ``mode``
    "fast" or "optimisation") gives ``(TransferConfig or FastConfig, VideoConfig)``."""
    kind = kind_of(method, mode)
    optimise = kind in ("transfer", "video-optimisation")
    cls = TransferConfig if optimise else FastConfig
    base = _preset(options.get("preset")) if optimise else cls()
    wanted = OPTIONS[kind]
    config = base.replace(**_parsed(cls, [n for n in wanted if n != "preset"], options))
    check_options(config)
    if method != "video":
        return config
    video = VideoConfig().replace(**_parsed(VideoConfig, VIDEO_OPTIONS[mode], options))
    check_options(video)
    return config, video


def _parsed(cls, names, options: dict) -> dict:
    fields = cls.__dataclass_fields__
    changes = {}
    for name in names:
        value = options.get(name)
        if value is None or name not in fields:
            continue
        parse = parser_of(fields[name])
        try:
            changes[name] = parse(value)
        except (TypeError, ValueError):
            raise ImpastoError(f"--{name.replace('_', '-')} must be {parse.kind}, got {value!r}") from None
    return changes


def _preset(name) -> TransferConfig:
    from ..presets import config_for

    if name is not None and not isinstance(name, str):
        raise ImpastoError(f"--preset must be a preset's name, got {name!r}")
    return config_for(name or None)


# ---------------------------------------------------------------- the server's handle on the process

class WorkerProcess:
    """The worker process seen from the server. ``on_message(worker, message)`` and
    ``on_exit(worker, exitcode)`` are called in ``loop`` (the server's event loop), the latter once,
    when the process has gone (stopped, crashed or killed)."""

    def __init__(self, loop, on_message, on_exit):
        self.loop, self.on_message, self.on_exit = loop, on_message, on_exit
        self.stopping = False
        ctx = multiprocessing.get_context("spawn")
        their_commands, self._commands = ctx.Pipe(duplex=False)
        self._events, their_events = ctx.Pipe(duplex=False)
        self.process = ctx.Process(target=main, args=(their_commands, their_events), name="impasto-worker",
                                   daemon=True)
        self.process.start()
        their_commands.close()  # the child has its own copies; closed here, its end-of-file reaches us
        their_events.close()
        self._reader = threading.Thread(target=self._read, name="impasto-worker-events", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def send(self, message: dict) -> bool:
        """Send a command; False if the process has gone (its exit is reported by ``on_exit``)."""
        try:
            self._commands.send(message)
            return True
        except (OSError, ValueError):
            return False

    def _read(self) -> None:
        while True:
            try:
                message = self._events.recv()
            except (EOFError, OSError):
                break
            self._post(self.on_message, self, message)
        self.process.join(timeout=10)
        self._post(self.on_exit, self, self.process.exitcode)

    def _post(self, fn, *args) -> None:
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop has closed: the server is gone
            pass

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the process to stop (the running job is abandoned: the server marks it), then make sure."""
        self.stopping = True
        self.send({"op": "stop"})
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(2)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(2)
        self._commands.close()
        self._reader.join(timeout=2)


# ---------------------------------------------------------------- the process itself

def main(commands, events) -> None:
    """The worker's entry point: the commands are read here, the jobs run in a thread of their own."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the terminal is the server's; it stops us
    lock = threading.Lock()

    def send(message: dict) -> None:
        with lock:
            try:
                events.send(message)
            except (OSError, ValueError):  # the server has gone
                os._exit(0)

    jobs: queue.Queue = queue.Queue()
    current: dict = {}
    runner = threading.Thread(target=_run_jobs, args=(jobs, current, send), name="impasto-job", daemon=True)
    runner.start()
    while True:
        try:
            command = commands.recv()
        except (EOFError, OSError):  # the server has gone: nothing is left to report to
            os._exit(0)
        op = command.get("op")
        if op == "run":
            from ..job import Cancel

            cancel = Cancel()
            current[command["id"]] = cancel
            jobs.put((command, cancel))
        elif op == "cancel" and command.get("id") in current:
            current[command["id"]].set()
        elif op == "stop":
            for cancel in list(current.values()):
                cancel.set()
            os._exit(0)  # the server marks what was running; nothing here needs tidying


def _run_jobs(jobs: queue.Queue, current: dict, send) -> None:
    try:
        from ..fast import stylise  # noqa: F401
    except Exception:  # a broken install: every job will fail and say why
        traceback.print_exc()
    send({"type": "ready"})
    jobs_run = _Jobs(send)
    while True:
        command, cancel = jobs.get()
        try:
            jobs_run.run(command, cancel)
        finally:
            current.pop(command["id"], None)


class _Jobs:
    """Runs jobs one after another, keeping the loaded networks and fast models for the next ones."""

    def __init__(self, send):
        self.send = send
        self.networks: dict = {}
        self.runners: dict = {}
        self.clip = None   # the running video job's clip

    def run(self, command: dict, cancel) -> None:
        from ..job import Interrupted

        jid, folder = command["id"], Path(command["dir"])
        self.send({"type": "started", "id": jid})
        last: dict = {}
        video = command["method"] == "video"
        try:
            run = {"transfer": self._transfer, "fast": self._fast, "video": self._video}[command["method"]]
            callback = self._callback(jid, folder, last, video)
            message = run(command, folder, cancel, callback)
            state, result = "done", True
        except Interrupted as stop:
            if video:
                state, (result, message) = "cancelled", self._keep_partial_video(stop.partial, folder, last)
            else:
                state, result = "cancelled", self._keep_partial(stop.partial, folder)
                message = _stopped_message(last, result)
        except ImpastoError as exc:
            state, result, message = "failed", False, str(exc)
        except Exception as exc:  # a bug or an exhausted machine: the job fails, the worker goes on
            traceback.print_exc(file=sys.stderr)
            state, result, message = "failed", False, f"{type(exc).__name__}: {exc}".splitlines()[0]
        if video:
            _forget_frames(folder)
        message = public_message(message, folder, command.get("names") or {})
        self.send({"type": "ended", "id": jid, "state": state, "message": message, "result": result})

    def _callback(self, jid: str, folder: Path, last: dict, video: bool):
        """The job's events as the server wants them: each :class:`~impasto.job.Progress` as its
        :meth:`~impasto.job.Progress.to_dict` (the losses beside it), the live image written as
        ``preview.jpg``; a video's live image is each frame as it is finished (the event that hands
        it over), and its progress also says the newest finished frame and the frames a minute."""
        import time

        from ..image.imageio import tensor_to_pil
        from .store import write_png_or_jpeg

        began, newest = time.perf_counter(), {"frame": 0}

        def callback(event) -> None:
            progress = event.to_dict()
            losses = progress.pop("losses")
            for other in ("event", "job", "extra"):
                progress.pop(other, None)
            preview = event.image is not None and (event.finished or not video)
            if preview:
                write_png_or_jpeg(tensor_to_pil(event.image), folder / "preview.jpg", quality=85)
            last.update(done=event.done, total=event.total)
            if video:
                if preview:
                    newest["frame"] = event.frame
                finished, elapsed = newest["frame"], time.perf_counter() - began
                progress.update(frame=event.frame, frames=event.frames, finished=finished,
                                fpm=round(finished / elapsed * 60, 1) if finished and elapsed > 0 else None)
                last.update(frame=event.frame, frames=event.frames)
            self.send({"type": "progress", "id": jid, "preview": preview, "losses": losses or None,
                       "progress": progress})

        return callback

    def _network(self, config):
        from ..net.vgg import load_network

        key = (config.weights, config.pooling, config.preprocess, config.precision, config.convolution, config.device)
        if key not in self.networks:
            self.networks.clear()  # one network in memory at a time
            self.networks[key] = load_network(config)
        return self.networks[key]

    def _transfer(self, command: dict, folder: Path, cancel, callback) -> str:
        from ..gatys.run import transfer

        config = build_config("transfer", command["options"])
        image = transfer(folder / command["content"], [folder / s for s in command["styles"]], config,
                         callback=callback, image_every=command["preview_every"], network=self._network(config),
                         cancel=cancel)
        self._keep(image, folder)
        return f"painted at {image.width}x{image.height}"

    def _fast(self, command: dict, folder: Path, cancel, callback) -> str:
        from PIL import Image

        from ..fast.stylise import load_runner, parse_mix, stylise_files

        config = build_config("fast", command["options"])
        key = (command["model"], config.precision, config.device)
        if key not in self.runners:
            self.runners.clear()
            self.runners[key] = load_runner(command["model"], config.precision, config.device)
        runner = self.runners[key]
        target = folder / "result.png"
        stylise_files(runner, config, parse_mix(None, runner.styles), [(folder / command["content"], target)],
                      callback, cancel)
        with Image.open(target) as image:
            self._keep(image, folder, result_written=True)
            return f"painted at {image.width}x{image.height}"

    def _video(self, command: dict, folder: Path, cancel, callback) -> str:
        from ..fast.model import resolve_model_path
        from ..fast.stylise import load_runner, parse_mix
        from ..image import flow
        from ..video.fast import fast_video
        from ..video.optimise import optimise_video
        from ..video.read import read_clip, require_av

        require_av(), flow.require_opencv()
        mode = command["mode"]
        config, video = build_config("video", command["options"], mode)
        content = command["content"]
        self.clip = clip = read_clip(folder / content, name=(command.get("names") or {}).get(content, content))
        limit = command.get("max_frames")
        if limit and len(clip.frames) > limit:  # the upload's probe said fewer: a stream that lied
            raise ImpastoError(f"the clip has {len(clip.frames)} frames, over the limit of {limit} per clip")
        output = folder / VIDEO_OUTPUT
        if mode == "fast":
            key = (command["model"], config.precision, config.device)
            if key not in self.runners:
                self.runners.clear()
                self.runners[key] = load_runner(command["model"], config.precision, config.device)
            runner = self.runners[key]
            keep = config.color_space if config.color == "luminance" else None
            result = fast_video(clip, runner, parse_mix(None, runner.styles), config.size, video, output, callback,
                                cancel, keep_colors=keep, model_key=str(resolve_model_path(command["model"])))
        else:
            result = optimise_video(clip, [folder / s for s in command["styles"]], config, video, output, callback,
                                    network=self._network(config), cancel=cancel)
        w, h = self._keep_video(result.frames, clip, folder)
        return f"painted {len(result.frames)} frames at {w}x{h}, {float(clip.fps):g} fps" + (
            ", with the clip's audio" if clip.audio is not None else "")

    def _keep_video(self, frames, clip, folder: Path) -> tuple[int, int]:
        """The frames as ``result.mp4`` (even sizes: browsers play only 4:2:0 H.264), its first frame as
        the thumbnail and its last as the preview; returns the size written."""
        from PIL import Image

        from ..video.write import write_clip
        from .store import write_png_or_jpeg

        h, w = frames[0].shape[:2]
        even = [f[: h - h % 2, : w - w % 2] for f in frames] if w % 2 or h % 2 else list(frames)
        write_clip(even, clip.fps, clip.audio, folder / VIDEO_OUTPUT)
        self._keep(Image.fromarray(even[0]), folder, result_written=True)
        write_png_or_jpeg(Image.fromarray(even[-1]), folder / "preview.jpg", quality=85)
        return w - w % 2, h - h % 2

    def _keep_partial_video(self, partial, folder: Path, last: dict) -> tuple[bool, str]:
        """A stopped video job: the frames finished so far as a shorter video; (kept, message)."""
        frames = list(getattr(partial, "frames", None) or [])
        total = getattr(partial, "total", None) or last.get("frames")
        at = f" at frame {min(len(frames) + 1, total)} of {total}" if total else ""
        if not frames:
            return False, f"stopped{at}, before the first frame was finished; nothing is kept"
        self._keep_video(frames, self.clip, folder)  # the clip's frame rate and sound
        n = len(frames)
        return True, (f"stopped{at}; the {n} frame{'s' if n != 1 else ''} made so far "
                      f"{'are' if n != 1 else 'is'} kept as a shorter video")

    @staticmethod
    def _keep(image, folder: Path, result_written: bool = False) -> None:
        from .store import save_thumb, write_png_or_jpeg

        if not result_written:
            write_png_or_jpeg(image, folder / "result.png")
        save_thumb(image, folder / "thumb.jpg")

    def _keep_partial(self, partial, folder: Path) -> bool:
        """A stopped job's partial result as its result: the latest image (transfer); a fast job stopped
        before its one image has none."""
        from PIL import Image

        if isinstance(partial, Image.Image):
            self._keep(partial, folder)
            return True
        return False


def _forget_frames(folder: Path) -> None:
    """A video job's kept frames, once it has ended (the server does not resume a job)."""
    import shutil

    from .store import FRAMES_GLOB

    for frames in folder.glob(FRAMES_GLOB):
        shutil.rmtree(frames, ignore_errors=True)


def _stopped_message(last: dict, kept: bool) -> str:
    where = f" at iteration {last['done']} of {last['total']}" if last else " before the first iteration"
    return f"stopped{where}" + ("; the latest image is kept" if kept else "")


def public_message(message: str | None, folder: Path, names: dict[str, str]) -> str | None:
    """A job's message as the page may see it: each of the job's input files (``names``: its file in
    ``folder`` -> the name the client gave the upload) by the client's name, and no path of the
    server's — the job's folder, the data folder above it — left in it."""
    if not message:
        return message
    for file, name in names.items():
        message = message.replace(str(folder / file), name)
    data = folder.parent.parent  # DATA, above jobs/<id>
    for path, shown in ((folder, "the job's folder"), (data, "the server's data folder")):
        message = message.replace(str(path) + os.sep, "").replace(str(path), shown)
    return message
