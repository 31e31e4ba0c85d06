"""Orthanc's REST API as a fetch source: its change log finds new studies exactly, files come as stored.

Why the change log (``GET /changes``) rather than a QIDO-RS date query: every change in Orthanc has a
strictly increasing sequence number, so "everything after sequence N" is exact. A study that arrives
late with an old StudyDate (the usual case for a research cohort pulled from the archive) is still
found, which a StudyDate filter cannot promise. The watermark is the last sequence number seen.

We act on ``StableStudy`` changes: Orthanc emits one when a study has received no new instance for
``StableAge`` seconds (its configuration, 60 by default), so a study still being sent is not taken half;
it is taken the next night. If more instances reach a study later, Orthanc emits another
``StableStudy`` and only the instances not yet fetched are retrieved. Caveat: Orthanc keeps stability
timers in memory, so a study whose sender stopped less than ``StableAge`` before an Orthanc restart gets
no ``StableStudy``; ``cohortpool fetch --full`` lists every study and catches it (held instances are
skipped, so a full pass is cheap).

Instances are retrieved with ``GET /instances/{id}/file``: the exact bytes Orthanc stored, streamed
without the multipart wrapping of WADO-RS.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

from cohortpool.ingest import http
from cohortpool.ingest.errors import SourceError
from cohortpool.ingest.source import Discovery, InstanceRef, StudyRef

log = logging.getLogger(__name__)

#: changes asked per page (Orthanc caps a page at 10000)
_PAGE = 1000


class OrthancSource:
    """An Orthanc server reached at its REST root (``http://host:8042``)."""

    def __init__(self, base_url: str, client: httpx.Client, *, attempts: int = 4, backoff: float = 0.5):
        self.base = base_url.rstrip("/")
        self.key = f"orthanc:{http.redact(self.base)}"
        self._client = client
        self._attempts = attempts
        self._backoff = backoff

    def _get_json(self, path: str, params: dict[str, str] | None = None, *, ok_missing: bool = False) -> Any:
        url = f"{self.base}{path}"
        response = http.request(
            self._client,
            "GET",
            url,
            params=params,
            attempts=self._attempts,
            backoff=self._backoff,
            ok_missing=ok_missing,
        )
        if response is None:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise SourceError(
                f"GET {http.redact(url)} did not answer JSON; "
                f"is {http.redact(self.base)} an Orthanc REST root?"
            ) from exc

    def discover(self, watermark: str | None, *, full: bool) -> Discovery:
        """Studies with a ``StableStudy`` change after the watermark (every study when ``full``)."""
        # read the log's end first: a study arriving while we list is then found again next run
        last = int(self._get_json("/changes", {"last": ""})["Last"])
        since = None if full else _parse_watermark(watermark, self.key)
        if since is not None and since > last:
            log.warning(
                "%s: the change log ends at %d, before the stored watermark %d (Orthanc's database was "
                "replaced?): listing every study instead; instances already fetched are skipped",
                self.key,
                last,
                since,
            )
            since = None
        if since is None:
            ids = self._get_json("/studies")
            return Discovery([StudyRef(str(i)) for i in ids], str(last))
        seen: dict[str, None] = {}  # ordered set: a study stable twice since the watermark is fetched once
        while True:
            page = self._get_json("/changes", {"since": str(since), "limit": str(_PAGE)})
            for change in page.get("Changes", []):
                if change.get("ChangeType") == "StableStudy":
                    seen[str(change["ID"])] = None
            since = int(page.get("Last", since))
            if page.get("Done", True):
                break
        return Discovery([StudyRef(key) for key in seen], str(since))

    def instances(self, study: StudyRef) -> list[InstanceRef] | None:
        """The study's instances (``None`` if it was deleted from Orthanc since its change)."""
        listing = self._get_json(f"/studies/{study.key}/instances", ok_missing=True)
        if listing is None:
            return None
        return [
            InstanceRef(str(item["MainDicomTags"].get("SOPInstanceUID", "")), f"/instances/{item['ID']}/file")
            for item in listing
        ]

    def retrieve(self, instance: InstanceRef) -> bytes:
        """The stored file of one instance."""
        url = f"{self.base}{instance.locator}"
        response = http.request(self._client, "GET", url, attempts=self._attempts, backoff=self._backoff)
        assert response is not None  # ok_missing is off: a 404 raised SourceError
        return response.content


def looks_like_orthanc(
    base_url: str, client: httpx.Client, *, attempts: int = 4, backoff: float = 0.5
) -> bool:
    """True if ``base_url`` is an Orthanc REST root (``GET /system`` answers Orthanc's JSON).

    Any HTTP answer decides (a DICOMweb root answers 404 or similar); only an unreachable server is
    retried, and then reported: guessing "not Orthanc" from a network hiccup would send DICOMweb
    queries to an Orthanc root.
    """
    url = f"{base_url.rstrip('/')}/system"
    last = ""
    for attempt in range(1, attempts + 1):
        try:
            response = client.get(url)
        except httpx.TransportError as exc:
            last = f"{type(exc).__name__}: {exc}"
            if attempt < attempts:
                time.sleep(backoff * 2 ** (attempt - 1))
            continue
        try:
            body = response.json() if response.status_code == 200 else {}
        except ValueError:
            return False
        return isinstance(body, dict) and "ApiVersion" in body and "DicomAet" in body
    raise SourceError(
        f"GET {http.redact(url)} failed after {attempts} attempts ({last}); check that the PACS is running "
        "and reachable from this machine (URL, port, firewall), or pass --protocol"
    )


def _parse_watermark(watermark: str | None, key: str) -> int:
    if watermark is None:
        return 0
    try:
        return int(watermark)
    except ValueError as exc:
        raise SourceError(
            f"stored watermark {watermark!r} of {key} is not an Orthanc change number; run once with "
            "--full to re-establish it"
        ) from exc
