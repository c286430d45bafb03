"""Property tests: the same examples on every run of the suite, fresh ones when fuzzing.

The suite (and so CI) replays derandomised examples, so a red run always means a change broke something.
`make fuzz` (IMAGESEARCH_FUZZ=1) draws new random examples, ten times as many, to find new failures; each
one found becomes a fixed regression test (as the mangled AVIF and HEIF files of the imaging tests did).
"""

from __future__ import annotations

import os

from hypothesis import settings

FUZZING = os.environ.get("IMAGESEARCH_FUZZ") == "1"


def load_profile() -> None:
    """Make the suite's or the fuzzing profile the default of every property test (before they import)."""
    settings.register_profile("suite", derandomize=True, database=None)
    settings.register_profile("fuzz", derandomize=False, database=None)
    settings.load_profile("fuzz" if FUZZING else "suite")


def examples(count: int) -> int:
    """How many examples a property test draws: `count` in the suite, ten times as many when fuzzing."""
    return count * 10 if FUZZING else count
