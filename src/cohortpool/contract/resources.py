"""The data files the package ships: SQL, Great Expectations suites and analysis plans.

They are edited where a reviewer expects them, the checkout's top-level ``sql/``, ``expectations/`` and
``plans/``; the wheel carries them inside the package (``cohortpool/shipped/``, see ``pyproject.toml``),
and a checkout reaches the same folders through symlinks there. Either way they are found through the
installed package, never the working directory, so an installed cohortpool runs from any folder.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

#: the analysis plan the report runs when none is named
DEFAULT_PLAN = "vcf_study"


def shipped_dir(kind: str) -> Path:
    """The shipped folder ``kind`` (``sql``, ``expectations`` or ``plans``) of the installed package."""
    # an installed wheel or a checkout is a real folder on disk (zip imports are not supported)
    return Path(str(files("cohortpool") / "shipped" / kind))


def sql_dir() -> Path:
    """``sql/``: migrations, loads, checks and analysis queries (read by the warehouse stage only)."""
    return shipped_dir("sql")


def suites_dir() -> Path:
    """``expectations/``: one reviewed suite per table (read by the validation stage only)."""
    return shipped_dir("expectations")


def plan_path(name: str = DEFAULT_PLAN) -> Path:
    """``plans/<name>.yaml``: a declarative analysis plan."""
    return shipped_dir("plans") / f"{name}.yaml"
