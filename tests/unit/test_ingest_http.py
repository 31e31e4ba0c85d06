"""Retries with backoff against a real local HTTP server, and messages that name the URL."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from cohortpool.ingest import http
from cohortpool.ingest.errors import SourceError


class _Flaky(BaseHTTPRequestHandler):
    """Answers 503 to the first ``failures`` requests of a path, then 200; /missing is 404; /slow is late."""

    failures = 2
    counts: ClassVar[dict[str, int]] = {}

    def do_GET(self) -> None:
        count = self.counts[self.path] = self.counts.get(self.path, 0) + 1
        if self.path == "/missing":
            status, body = 404, b"no"
        elif self.path == "/slow":  # a PACS that accepts the connection but answers too late
            time.sleep(1.0)
            status, body = 200, b"late"
        elif count <= self.failures:
            status, body = 503, b"busy"
        else:
            status, body = 200, b"ok"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Flaky.counts = {}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_busy_server_is_retried_until_it_answers(server: str) -> None:
    with http.make_client(timeout=5) as client:
        response = http.request(client, "GET", f"{server}/a", attempts=3, backoff=0.01)
    assert response is not None and response.text == "ok"
    assert _Flaky.counts["/a"] == 3


def test_giving_up_names_the_url_and_what_to_do(server: str) -> None:
    with http.make_client(timeout=5) as client, pytest.raises(SourceError) as info:
        http.request(client, "GET", f"{server}/b", attempts=2, backoff=0.01)
    message = str(info.value)
    assert f"GET {server}/b failed after 2 attempts (HTTP 503)" in message
    assert "check that the PACS is running" in message
    assert _Flaky.counts["/b"] == 2


def test_not_found_is_not_retried(server: str) -> None:
    with http.make_client(timeout=5) as client:
        with pytest.raises(SourceError, match="HTTP 404: not found; check the source URL"):
            http.request(client, "GET", f"{server}/missing", attempts=4, backoff=0.01)
        assert http.request(client, "GET", f"{server}/missing", ok_missing=True) is None
    assert _Flaky.counts["/missing"] == 2


def test_unreachable_source_is_retried_then_reported() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with http.make_client(timeout=2) as client, pytest.raises(SourceError, match="ConnectError"):
        http.request(client, "GET", f"http://127.0.0.1:{port}/x", attempts=2, backoff=0.01)


def test_redact_drops_credentials_and_hashes_uids() -> None:
    shown = http.redact("http://user:secret@pacs:8042/dicom-web/studies/1.2.840.113619.2.1/series/1.2.3")
    assert "secret" not in shown and "user" not in shown
    assert "1.2.840.113619.2.1" not in shown
    assert shown.startswith("http://pacs:8042/dicom-web/studies/uid-")
    assert shown == http.redact("http://pacs:8042/dicom-web/studies/1.2.840.113619.2.1/series/1.2.3")


def test_redact_hashes_whatever_sits_where_a_uid_belongs_but_keeps_orthanc_ids() -> None:
    """A hostile instance's "UID" may hold a patient's name; an Orthanc id is a hash and helps the staff."""
    shown = http.redact(
        "http://pacs/dicom-web/studies/1.2.3/series/4.5.6/instances/1.2.840.DOE%5EJANE.MRN0001"
    )
    assert "DOE" not in shown and "MRN0001" not in shown
    assert shown.startswith("http://pacs/dicom-web/studies/uid-") and "/instances/uid-" in shown
    orthanc = "http://pacs:8042/instances/fb59659b-56340b78-712c8940-9458306c-ef06a33d/file"
    assert http.redact(orthanc) == orthanc


def test_httpx_request_log_shows_urls_redacted(server: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="httpx")
    with http.make_client(timeout=2) as client:
        client.get(f"{server}/dicom-web/studies/1.2.840.DOE%5EJANE/series")
    assert "HTTP Request: GET" in caplog.text and "/studies/uid-" in caplog.text
    assert "DOE" not in caplog.text


def test_slow_source_times_out_is_retried_then_reported_naming_the_timeout(server: str) -> None:
    started = time.monotonic()
    with http.make_client(timeout=0.2) as client, pytest.raises(SourceError) as info:
        http.request(client, "GET", f"{server}/slow", attempts=2, backoff=0.01)
    assert f"GET {server}/slow failed after 2 attempts (ReadTimeout" in str(info.value)
    assert _Flaky.counts["/slow"] == 2
    assert time.monotonic() - started < 5  # bounded by the timeout, not by the server
