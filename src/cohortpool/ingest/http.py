"""HTTP to a PACS: one httpx client, retries with backoff on I/O, errors that name the URL.

httpx's own ``retries=`` covers only failed connects and has no backoff; a PACS that is restarting
answers 502/503 or drops the connection mid-transfer, which the nightly run should ride out. The loop
below is the whole policy (a handful of lines, so no extra retry library): retry transport errors and
429/5xx answers with exponential backoff, give up with an error that says what to check.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

from cohortpool.ingest.errors import SourceError

log = logging.getLogger(__name__)

_RETRY_STATUS = {429, 500, 502, 503, 504}
#: a path segment that is a DICOM UID (at least three dot-separated numbers)
_UID = re.compile(r"[0-9]+(?:\.[0-9]+){2,}")
#: path segments after which DICOMweb puts a UID (and Orthanc its own ids)
_UID_PARENTS = frozenset({"studies", "series", "instances"})
#: an Orthanc resource id (a hash of the resource's UIDs): safe to show, and what the PACS's staff look up
_ORTHANC_ID = re.compile(r"[0-9a-f]{8}(?:-[0-9a-f]{8}){4}")


class _RedactedUrls(logging.Filter):
    """httpx logs every request's URL at INFO; a PACS URL holds UIDs (a hostile one, a patient's name):
    the record keeps the request, with the URL as :func:`redact` shows it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(str(a)) if isinstance(a, httpx.URL) else a for a in record.args)
        return True


_REDACTED_URLS = _RedactedUrls()


def make_client(timeout: float = 60.0, auth: tuple[str, str] | None = None) -> httpx.Client:
    """A client for one run: keep-alive across the many small requests of a fetch, no proxies from env.

    ``trust_env=False``: a hospital PACS is reached directly; an HTTP(S)_PROXY meant for the internet
    must not reroute (or leak) PACS traffic. httpx's own request log shows URLs redacted.
    """
    httpx_log = logging.getLogger("httpx")
    if _REDACTED_URLS not in httpx_log.filters:
        httpx_log.addFilter(_REDACTED_URLS)
    return httpx.Client(timeout=timeout, auth=auth, trust_env=False, follow_redirects=False)


def redact(url: str) -> str:
    """The URL without user:password, and with DICOM UIDs replaced by a short hash, for messages.

    UIDs identify a patient's study; they may appear in site-internal file names but not in logs or
    error messages. The hash (first 10 hex of sha256) still lets an operator match two messages. Any
    segment after ``studies/``, ``series/`` or ``instances/`` is hashed even when it is not a valid UID (a
    hostile instance's "UID" may hold a patient name), except Orthanc's own ids, which reveal nothing.
    """
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    # a UID anywhere is hashed; so is whatever sits where a UID belongs, valid or not (a hostile "UID"
    # may carry a patient's name), unless it is an Orthanc id
    segments = parts.path.split("/")
    for i in range(1, len(segments)):
        segment = segments[i]
        in_uid_place = segments[i - 1] in _UID_PARENTS and not _ORTHANC_ID.fullmatch(segment)
        if segment and (in_uid_place or _UID.fullmatch(segment)):
            segments[i] = _hashed(unquote(segment))
    return urlunsplit((parts.scheme, netloc, "/".join(segments), parts.query, parts.fragment))


def _hashed(uid: str) -> str:
    """``uid-`` and the first 10 hex digits of the UID's sha256: matches two messages, reveals nothing."""
    return "uid-" + hashlib.sha256(uid.encode("utf-8", "surrogateescape")).hexdigest()[:10]


def request(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    attempts: int = 4,
    backoff: float = 0.5,
    ok_missing: bool = False,
) -> httpx.Response | None:
    """Send a request, retrying I/O failures; return the response, or None for 404 if ``ok_missing``.

    Raises
    ------
    SourceError
        After ``attempts`` failures, or at once for an answer a retry cannot fix (401, 403, 404, ...);
        the message names the method, the URL (without credentials) and what to check.
    """
    shown = redact(url)
    last = ""
    for attempt in range(1, attempts + 1):
        try:
            response = client.request(method, url, headers=headers, params=params)
        except httpx.TransportError as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if response.status_code == 404 and ok_missing:
                return None
            if response.status_code < 400:
                return response
            if response.status_code not in _RETRY_STATUS:
                raise SourceError(f"{method} {shown} answered HTTP {response.status_code}: {_hint(response)}")
            last = f"HTTP {response.status_code}"
        if attempt < attempts:
            delay = backoff * 2 ** (attempt - 1)
            log.warning(
                "%s %s failed (%s), retry %d/%d in %.1f s", method, shown, last, attempt, attempts - 1, delay
            )
            time.sleep(delay)
    raise SourceError(
        f"{method} {shown} failed after {attempts} attempts ({last}); check that the PACS is running and "
        "reachable from this machine (URL, port, firewall), then run again: nothing was marked as fetched"
    )


def _hint(response: httpx.Response) -> str:
    """What to do about an HTTP error a retry will not fix."""
    code = response.status_code
    if code in (401, 403):
        return "the PACS refused the credentials; check the user and password configured for this source"
    if code == 400:
        return (
            "the server did not understand the request; check that the URL is the root of the API you "
            "meant (an Orthanc root http://host:8042, or a DICOMweb root such as .../dicom-web) "
            "and --protocol"
        )
    if code == 404:
        return "not found; check the source URL (an Orthanc root, or its DICOMweb root such as /dicom-web)"
    if code == 406:
        return "the PACS cannot send the requested media type; check that it supports WADO-RS"
    return "see the PACS log for the reason"
