"""The fuzz tier's folder on the import path (corpus builders, mutations, profiles) and its profile loaded.

Every test here carries the ``fuzz`` marker (``-m fuzz`` runs the tier alone, ``-m "not fuzz"`` skips
it), ignores the warnings pydicom gives for the broken files it is fed on purpose, and, under the CI
profile, fails after 10 minutes instead of hanging: a hang on some input is a finding too.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

# hypothesis caches what it learns about the code under test in ./.hypothesis by default: tests write
# nothing into the checkout, so the cache lives in the temporary folder
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", str(Path(tempfile.gettempdir()) / "cohortpool-hypothesis")
)
sys.path.insert(0, str(Path(__file__).resolve().parent))

import profiles  # needs the path above

profiles.load()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.fuzz)
            item.add_marker(pytest.mark.filterwarnings("ignore::UserWarning"))
            if profiles.PROFILE == "ci":
                item.add_marker(pytest.mark.timeout(600))
