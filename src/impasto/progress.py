"""A terminal progress bar fed by :class:`impasto.optimize.Progress` events (tqdm underneath)."""

from __future__ import annotations

import sys

from tqdm import tqdm


def _fmt(value: float) -> str:
    return f"{value:.3g}"


class ProgressBar:
    """Iteration, the loss terms, iterations per second and time left, on stderr."""

    def __init__(self, total: int, desc: str = "impasto", unit: str = "it", initial: int = 0):
        self.total, self.desc, self.unit, self.initial, self.bar = total, desc, unit, initial, None

    def __call__(self, event) -> None:
        if self.bar is None:  # opened on the first event, so input errors print no empty bar
            self.bar = tqdm(total=self.total, desc=self.desc, unit=self.unit, file=sys.stderr,
                            dynamic_ncols=True, smoothing=0.1, initial=self.initial)
        shown = {k: _fmt(v) for k, v in event.losses.items() if k != "total"}
        if getattr(event, "scales", 1) > 1:
            shown["scale"] = f"{event.scale + 1}/{event.scales}"
        if getattr(event, "cells", 1) > 1:  # a sheet of several runs (impasto.paper.CellProgress)
            shown["cell"] = f"{event.cell + 1}/{event.cells}" + (" cached" if event.cached else "")
        self.bar.set_postfix(shown, refresh=False)
        self.bar.update(event.iteration - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
