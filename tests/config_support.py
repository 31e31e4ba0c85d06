"""What the tests configure cohortpool with: a valid test key and the synthetic consortium's registry."""

from __future__ import annotations

from pathlib import Path

import yaml

#: a consortium secret for tests: 64 hex characters (256 bits), never a real one
TEST_SECRET = "5d1c7b0e9a3f46e28b7c1d0f9e4a6b3c2d8e7f1a0b9c4d6e3f2a1b0c9d8e7f6a"
#: the sites of the synthetic consortium (`cohortpool synth`, `write_consortium`) the suite declares
SYNTHETIC_SITES = ("site01", "site02", "site03")


def write_config(path: Path, sites: tuple[str, ...] = SYNTHETIC_SITES, **settings: object) -> Path:
    """A cohortpool.yaml at ``path`` declaring ``sites`` (plus any top-level ``settings``)."""
    document = {"sites": [{"site_id": site} for site in sites], **settings}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path
