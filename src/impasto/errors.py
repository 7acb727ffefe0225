"""The one exception type the product raises for bad input or a failed run.

The CLI turns an :class:`ImpastoError` into a single line on stderr and exit code 2
(or 1 for a run that diverged); library callers catch it like any exception.
"""


class ImpastoError(Exception):
    """Bad input (file, option, layer name) — the message names the problem and the file."""


class DivergedError(ImpastoError):
    """The optimisation produced NaN or inf; no image is written."""
