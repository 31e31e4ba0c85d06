"""Hypothesis profiles of the fuzz tier, chosen with ``HYPOTHESIS_PROFILE``.

- ``ci`` (default): a few examples per property (each property's count is given with :func:`examples`;
  the whole tier takes about a minute on 2 cores), derandomized so that CI runs the same inputs every
  time and is never flaky; no example database (tests write nothing into the checkout).
- ``long``: 2,000 random examples per property, for a night of fuzzing:
  ``HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest -m fuzz tests/fuzz``. A failure prints the
  minimal input it shrank to and a ``@reproduce_failure`` blob.

Properties choose their own CI count, because one example of the whole validation (Great Expectations
runs every suite) costs as much as a hundred of the CSV reader.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")


def load() -> None:
    common = {
        # a shared 2-core machine makes per-example deadlines flaky; a pytest timeout bounds a hang
        "deadline": None,
        "database": None,
        "print_blob": True,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    }
    settings.register_profile("ci", derandomize=True, **common)  # type: ignore[arg-type]
    settings.register_profile("long", max_examples=2000, **common)  # type: ignore[arg-type]
    settings.load_profile(PROFILE)


def examples(ci: int, long: int | None = None) -> settings:
    """``ci`` examples under the CI profile; ``long`` (or the profile's own count) under any other."""
    if PROFILE == "ci":
        return settings(max_examples=ci)
    return settings() if long is None else settings(max_examples=long)
