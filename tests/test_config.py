"""Tests of impasto.config: the checks of its options."""

import pytest

from impasto import ImpastoError


def test_griffin_lim_momentum_range_is_checked():
    """The range lived inside the help text once, and went unchecked."""
    from impasto.config import AudioConfig, check_options

    check_options(AudioConfig(griffin_lim_momentum=0.0))
    for bad in (1.0, -0.1):
        with pytest.raises(ImpastoError, match="--griffin-lim-momentum must be at least 0 and below 1"):
            check_options(AudioConfig(griffin_lim_momentum=bad))
