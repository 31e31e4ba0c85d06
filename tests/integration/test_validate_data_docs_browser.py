"""The run's Data Docs in a real browser with the network cut off: nothing remote, no dead link.

Every page (cohortpool's index and each GX page) is opened by headless Chromium; what Chromium parsed
(``--dump-dom``) is searched for links and sources: each must resolve to a file of the batch's Data Docs
(and, with a fragment, to an element of that page), and none may name the web.
"""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from cohortpool.validate import validate_submission

pytestmark = pytest.mark.integration

#: every remote host GX 1.24's Data Docs templates load from or link to
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
#: attributes that make a browser fetch or navigate
URL_ATTRIBUTES = ("href", "src", "srcset", "data", "action", "poster", "background", "formaction")


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("chromium is not installed (Debian package `chromium`; .ci/run installs it)")


class _Page(HTMLParser):
    """The ids of a parsed page, the URLs its attributes name, and what its styles refer to."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.urls: list[tuple[str, str]] = []
        self.web: list[str] = []
        self._style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._style = tag == "style"
        for name, value in attrs:
            value = value or ""
            if name in ("id", "name"):
                self.ids.add(value)
            if name in URL_ATTRIBUTES:
                self.urls.append((tag, value))
            if "http://" in value.lower() or "https://" in value.lower():
                self.web.append(f"<{tag} {name}={value}>")

    def handle_endtag(self, tag: str) -> None:
        self._style = False

    def handle_data(self, data: str) -> None:
        if self._style and ("http://" in data.lower() or "https://" in data.lower()):
            self.web.append(f"<style> {data.strip()[:100]}")


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("docs")
    shutil.copytree(CLEAN, root / "submission")
    (root / "submission" / "reads.csv").write_text(
        (root / "submission" / "reads.csv").read_text().replace(",L2,", ",L7,", 1)
    )
    validate_submission(root / "submission", root / "out")
    return root / "out" / "data_docs"


def _open(page: Path, profile: Path, netlog: Path | None = None) -> str:
    """The DOM Chromium builds from ``page`` with every remote request sent to a dead proxy."""
    return subprocess.run(
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
            *([f"--log-net-log={netlog}"] if netlog else []),
            f"--user-data-dir={profile}",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout


@pytest.fixture(scope="module")
def doms(docs: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, _Page]:
    profile = tmp_path_factory.mktemp("profile")
    parsed = {}
    for page in sorted(docs.rglob("*.html")):
        parser = _Page()
        parser.feed(_open(page, profile))
        parsed[page.relative_to(docs).as_posix()] = parser
    return parsed


@pytest.mark.parametrize("page", ["index.html", "gx/reads.typed.html"])
def test_page_renders_offline_without_remote_requests(docs: Path, page: str, tmp_path: Path) -> None:
    netlog = tmp_path / "netlog.json"
    dom = _open(docs / page, tmp_path / "profile", netlog)
    assert "level" in dom and "L7" in dom  # the failed level check and its (pseudonymous) value
    # Chromium itself phones home (accounts, updates); what matters is that the page asked for nothing
    log = netlog.read_text(errors="replace")
    requested = [host for host in CDN_HOSTS if host in log]
    assert requested == [], requested


def test_every_page_was_opened(docs: Path, doms: dict[str, _Page]) -> None:
    assert "index.html" in doms
    assert {
        f"gx/{t}.{h}.html" for t in ("clinical", "reads", "imaging_manifest") for h in ("text", "typed")
    } <= set(doms)
    assert all(page.ids for page in doms.values())  # Chromium returned real DOMs


def test_no_page_refers_to_the_web(doms: dict[str, _Page]) -> None:
    assert {name: page.web for name, page in doms.items() if page.web} == {}


def test_every_link_and_source_resolves_to_a_file_and_element_that_exist(
    docs: Path, doms: dict[str, _Page]
) -> None:
    dead = []
    links = 0
    for name, page in doms.items():
        for tag, url in page.urls:
            links += 1
            parts = urlsplit(url)
            if parts.scheme or parts.netloc:
                dead.append(f"{name}: <{tag}> {url} (not a file of the Data Docs)")
                continue
            target = name if not parts.path else (docs / name).parent.joinpath(unquote(parts.path))
            target_name = (
                name if not parts.path else Path(target).resolve().relative_to(docs.resolve()).as_posix()
            )
            if target_name not in doms:
                exists = (docs / target_name).is_file()
                if not exists:
                    dead.append(f"{name}: <{tag}> {url} (no such file)")
                continue
            if parts.fragment and unquote(parts.fragment) not in doms[target_name].ids:
                dead.append(f"{name}: <{tag}> {url} (no element {parts.fragment!r})")
    assert links > 50  # the pages do link (table of contents, breadcrumbs, index -> GX pages)
    assert dead == []


def test_gx_pages_name_the_data_asset_and_the_run(docs: Path) -> None:
    for page in (docs / "gx").glob("*.html"):
        html = page.read_text()
        table = page.name.split(".")[0]
        assert "Data asset: None" not in html and f"Data asset: {table}.csv" in html, page.name
        assert "__none__" not in html, page.name
