"""The run's Data Docs open in a real browser with the network cut off, and request nothing remote."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from cohortpool.validate import validate_submission

pytestmark = pytest.mark.integration

#: every remote host GX 1.24's Data Docs templates load from
CDN_HOSTS = (
    "cdn.jsdelivr.net",
    "cdnjs.cloudflare.com",
    "unpkg.com",
    "bootstrapcdn.com",
    "code.jquery.com",
    "great-expectations-web-assets",
    "greatexpectations.io",
)
CLEAN = Path(__file__).resolve().parents[1] / "data" / "validate" / "clean"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("chromium is not installed (Debian package `chromium`; .ci/run installs it)")


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("docs")
    shutil.copytree(CLEAN, root / "submission")
    (root / "submission" / "reads.csv").write_text(
        (root / "submission" / "reads.csv").read_text().replace(",L2,", ",L7,", 1)
    )
    validate_submission(root / "submission", root / "out")
    return root / "out" / "data_docs"


@pytest.mark.parametrize("page", ["index.html", "gx/reads.typed.html"])
def test_page_renders_offline_without_remote_requests(docs: Path, page: str, tmp_path: Path) -> None:
    netlog = tmp_path / "netlog.json"
    dom = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            # an unreachable proxy: anything remote the page asked for would fail, and be logged
            "--proxy-server=http://127.0.0.1:9",
            f"--log-net-log={netlog}",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            (docs / page).resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "level" in dom and "L7" in dom  # the failed level check and its (pseudonymous) value
    # Chromium itself phones home (accounts, updates); what matters is that the page asked for nothing
    log = netlog.read_text(errors="replace")
    requested = [host for host in CDN_HOSTS if host in log]
    assert requested == [], requested
