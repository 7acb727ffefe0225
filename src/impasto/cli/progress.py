"""How a command shows a job's :class:`~impasto.job.Progress` events: a terminal bar (tqdm
underneath) or one JSON line per event, both on stderr."""

from __future__ import annotations

import sys

from ..job import Progress

BAR_DELAY = 0.5  # seconds: a job of one unit (one image) done sooner shows no bar, and imports no tqdm
BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}, {rate_fmt}{postfix}]"


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"


class ProgressBar:
    """Units done of the total, the time left, the stage and the loss terms."""

    def __init__(self):
        self.bar = None
        self.kept: dict[str, str] = {}  # figures that are no loss (a validation pass), shown until replaced

    def __call__(self, event: Progress) -> None:
        self.kept.update({k: _fmt(v) for k, v in event.extra.items()})
        if self.bar is None and event.total <= 1 and event.elapsed < BAR_DELAY:  # nothing to count
            return
        if self.bar is None:  # opened on the first event (input errors print no empty bar), at its count: the
            # rate is that of this run, also when it resumes (a training run, cached figure cells)
            from tqdm import tqdm

            self.bar = tqdm(total=event.total, initial=event.done, desc=f"impasto {event.job}", unit=event.unit,
                            file=sys.stderr, dynamic_ncols=True, smoothing=0.1, bar_format=BAR_FORMAT)
        shown = {"left": _clock(event.eta) if event.eta is not None else "?"}
        if event.stage:
            shown["at"] = event.stage
        shown.update({k: _fmt(v) for k, v in event.losses.items() if k != "total"})
        shown.update(self.kept)
        self.bar.set_postfix(shown, refresh=False)
        self.bar.update(event.done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class JsonLines:
    """``--progress json``: each event as one JSON line (:meth:`Progress.to_json`)."""

    def __call__(self, event: Progress) -> None:
        print(event.to_json(), file=sys.stderr, flush=True)

    def close(self) -> None:
        pass
