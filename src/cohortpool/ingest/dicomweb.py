"""Any DICOMweb server as a fetch source: QIDO-RS finds studies, WADO-RS retrieves instances.

QIDO-RS (PS3.18 10.6) can filter studies by StudyDate but has no "received since" attribute, so
discovery asks for studies whose StudyDate is on or after the last successful run's date minus
``overlap_days``. That overlap absorbs studies filed a few days late; each found study whose instance
count (NumberOfStudyRelatedInstances) equals what the ledger already holds is skipped without another
request, so the overlap costs one QIDO answer, not a re-download. A study that reaches the PACS with a
StudyDate older than the window is not seen: use ``--full`` for a catch-up pass, or an Orthanc source,
whose change log has no such gap (:mod:`cohortpool.ingest.orthanc`).

Retrieval asks WADO-RS for one instance at a time (``.../instances/{uid}``) with
``transfer-syntax=*``, so the server sends the instance as stored, without transcoding, and memory holds
one instance, never a whole study. The multipart/related answer (RFC 2387) is split with the standard
library's ``email`` parser: it implements RFC 2046 boundaries, is exact on binary bodies (bare CR and LF
in pixel data survive, which a unit test checks), and adds no dependency. ``dicomweb-client`` was
considered: it pulls in ``requests`` beside our ``httpx``, and hands back decoded pydicom data sets where
we want the server's bytes.
"""

from __future__ import annotations

import datetime as dt
import email.parser
import email.policy
import json
from typing import Any
from urllib.parse import quote

import httpx

from cohortpool.ingest import http
from cohortpool.ingest.errors import SourceError
from cohortpool.ingest.source import Discovery, InstanceRef, StudyRef

#: results asked per QIDO page (servers may cap it lower; paging goes on until an empty page)
_PAGE = 500
_ACCEPT_DICOM = 'multipart/related; type="application/dicom"; transfer-syntax=*'
_STUDY_UID, _SERIES_UID, _SOP_UID, _N_INSTANCES = "0020000D", "0020000E", "00080018", "00201208"


class DicomWebSource:
    """A DICOMweb service reached at its root (for Orthanc: ``http://host:8042/dicom-web``)."""

    def __init__(
        self,
        base_url: str,
        client: httpx.Client,
        *,
        overlap_days: int = 7,
        attempts: int = 4,
        backoff: float = 0.5,
        today: dt.date | None = None,
    ):
        self.base = base_url.rstrip("/")
        self.key = f"dicomweb:{http.redact(self.base)}"
        self._client = client
        self._overlap = dt.timedelta(days=overlap_days)
        self._attempts = attempts
        self._backoff = backoff
        self._today = today

    def _qido(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        """Every result of a QIDO-RS query, page by page."""
        results: list[dict[str, Any]] = []
        seen: set[str] = set()
        offset = 0
        while True:
            page_params = {**params, "limit": str(_PAGE), "offset": str(offset)}
            url = f"{self.base}{path}"
            response = http.request(
                self._client,
                "GET",
                url,
                params=page_params,
                headers={"Accept": "application/dicom+json"},
                attempts=self._attempts,
                backoff=self._backoff,
            )
            assert response is not None
            if response.status_code == 204 or not response.content.strip():
                break  # PS3.18: 204 No Content for an empty match
            try:
                page = response.json()
            except ValueError as exc:
                raise SourceError(
                    f"GET {http.redact(url)} did not answer DICOM JSON; is {http.redact(self.base)} a "
                    "DICOMweb root (for Orthanc: http://host:8042/dicom-web)?"
                ) from exc
            if not isinstance(page, list) or not all(isinstance(item, dict) for item in page):
                raise SourceError(
                    f"GET {http.redact(url)} did not answer DICOM JSON (a list of objects); is "
                    f"{http.redact(self.base)} a DICOMweb root (for Orthanc: http://host:8042/dicom-web)?"
                )
            # page until an empty answer: a server may cap ``limit`` below ours, so a short page does not
            # mean the end; a server that ignores ``offset`` repeats itself, which also ends the loop
            fresh = [item for item in page if json.dumps(item, sort_keys=True) not in seen]
            if not fresh:
                break
            seen.update(json.dumps(item, sort_keys=True) for item in fresh)
            results.extend(fresh)
            offset += len(page)
        return results

    def discover(self, watermark: str | None, *, full: bool) -> Discovery:
        """Studies dated on or after the watermark minus the overlap (every study when ``full``)."""
        run_date = self._today or dt.date.today()
        params: dict[str, str] = {"includefield": _N_INSTANCES}
        if watermark is not None and not full:
            try:
                since = dt.date.fromisoformat(watermark) - self._overlap
            except ValueError as exc:
                raise SourceError(
                    f"stored watermark {watermark!r} of {self.key} is not a date; run once with --full"
                ) from exc
            params["StudyDate"] = f"{since:%Y%m%d}-"
        studies = []
        for item in self._qido("/studies", params):
            uid = _first(item, _STUDY_UID)
            if uid is None:
                continue
            count = _first(item, _N_INSTANCES)
            studies.append(StudyRef(uid, int(count) if count is not None else None, study_uid=uid))
        return Discovery(studies, run_date.isoformat())

    def instances(self, study: StudyRef) -> list[InstanceRef] | None:
        """The study's instances from QIDO-RS (``None`` if the study is gone)."""
        found = self._qido(f"/studies/{_segment(study.key)}/instances", {})
        if not found:
            return None
        refs = []
        for item in found:
            series, sop = _first(item, _SERIES_UID), _first(item, _SOP_UID)
            if series and sop:
                # quoted: a hostile "UID" ("../..", "a/b") must not reach another resource of the server
                path = f"/studies/{_segment(study.key)}/series/{_segment(series)}/instances/{_segment(sop)}"
                refs.append(InstanceRef(sop, path, addressed_by=(study.key, series, sop)))
        return refs

    def retrieve(self, instance: InstanceRef) -> bytes:
        """One instance over WADO-RS, unwrapped from its multipart/related answer."""
        url = f"{self.base}{instance.locator}"
        response = http.request(
            self._client,
            "GET",
            url,
            headers={"Accept": _ACCEPT_DICOM},
            attempts=self._attempts,
            backoff=self._backoff,
        )
        assert response is not None
        parts = split_multipart(response.headers.get("content-type", ""), response.content, http.redact(url))
        if len(parts) != 1:
            raise SourceError(f"GET {http.redact(url)} sent {len(parts)} parts for one instance; expected 1")
        return parts[0]


def split_multipart(content_type: str, body: bytes, origin: str) -> list[bytes]:
    """The bodies of the parts of a ``multipart/related`` message, byte for byte.

    Raises
    ------
    SourceError
        If the answer is not multipart (the server ignored the Accept header) or a part is not DICOM.
    """
    if not content_type.lower().startswith("multipart/"):
        raise SourceError(
            f"{origin} answered {content_type or 'no content type'!s}, not multipart/related; the server "
            "does not support WADO-RS retrieval of DICOM instances"
        )
    header = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + body)
    if not message.is_multipart():
        raise SourceError(f"{origin}: the multipart answer could not be split (boundary missing?)")
    parts: list[bytes] = []
    for part in message.iter_parts():
        kind = part.get_content_type()
        if kind != "application/dicom":
            raise SourceError(f"{origin}: a part is {kind}, expected application/dicom")
        payload = part.get_payload(decode=True)
        parts.append(payload if isinstance(payload, bytes) else b"")
    return parts


def _first(item: dict[str, Any], tag: str) -> str | None:
    """The first value of a tag in a DICOM JSON object (PS3.18 F.2), as text."""
    values = item.get(tag, {}).get("Value") or []
    return None if not values else str(values[0])


def _segment(value: str) -> str:
    """``value`` as one URL path segment (percent-encoded; a valid UID is unchanged)."""
    if value in (".", ".."):  # a dot segment would be resolved away: the URL would name the parent
        return value.replace(".", "%2E")
    return quote(value, safe="")
