"""The fuzz tier's folder on the import path (corpus builders, mutations, profiles) and its profile loaded.

Every test here carries the ``fuzz`` marker: ``-m fuzz`` runs the tier alone, ``-m "not fuzz"`` skips it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import profiles  # needs the path above

profiles.load()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.fuzz)
