"""The ingest stage's memory between runs: one SQLite file in the site's state folder.

It holds what must survive a crash and be safe under two processes at once: the drop-folder nights
already processed (with their content checksum, so a re-delivered night is noticed), the watermark of
each PACS source (moved only after a run the source did not fail), the ledger of instances already
fetched (so an overlapping query never writes a study twice), and the instances a fetch refused as
unusable (so a bad instance is told once and does not hold the watermark). SQLite gives atomic, locked
transactions from the standard library; a JSON file would need hand-written locking. The state folder
is site-internal: the ledger holds DICOM UIDs and must never be sent to the hub.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

STATE_FILE = "ingest_state.sqlite3"

_SCHEMA = """
create table if not exists nights (
    site_id text not null,
    night text not null,
    content_sha256 text not null,
    -- sha256 over (path, size, mtime) of every file: when it is unchanged, the content is not re-read
    stat_sha256 text not null,
    n_files integer not null,
    processed_at text not null default (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    primary key (site_id, night)
);
create table if not exists watermarks (
    source text primary key,
    value text not null,
    updated_at text not null default (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
create table if not exists instances (
    site_id text not null,
    sop_instance_uid text not null,
    study_uid text not null,
    source text not null,
    night text not null,
    sha256 text not null,
    fetched_at text not null default (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    primary key (site_id, sop_instance_uid)
);
create index if not exists instances_by_study on instances (site_id, study_uid);
-- instances of a PACS that fetch refused as unusable (unreadable, UIDs unusable as names): the watermark
-- moves past them; the same bytes met again are skipped quietly, changed bytes are judged again, and
-- `cohortpool fetch --retry-refused` (or deleting a row) judges them again whatever their bytes
create table if not exists refused_instances (
    site_id text not null,
    source text not null,
    -- where the source serves it (DICOMweb: UIDs in the path; may hold what a hostile UID carries)
    locator text not null,
    -- what messages call it: the URL with every UID hashed (Orthanc: its PACS-internal instance id)
    name text not null,
    study_key text not null,
    study_uid text,
    sha256 text not null,
    reason text not null,
    night text not null,
    refused_at text not null default (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    primary key (site_id, source, locator)
);
"""


@contextmanager
def open_state(state_dir: Path) -> Iterator[sqlite3.Connection]:
    """Open (creating if needed) the state database.

    Each write helper below commits its own change at once, so what is on disk and what the ledger says
    never drift apart by more than the one file being written when a process dies.
    """
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    # a generous timeout: a listener and a nightly fetch may touch the file at the same moment
    conn = sqlite3.connect(state_dir / STATE_FILE, timeout=30.0)
    try:
        conn.executescript(_SCHEMA)
        yield conn
    finally:
        conn.close()


def processed_nights(conn: sqlite3.Connection) -> dict[tuple[str, str], tuple[str, str]]:
    """``(site_id, night) -> (content_sha256, stat_sha256)`` of every night already processed."""
    rows = conn.execute("select site_id, night, content_sha256, stat_sha256 from nights")
    return {(site, night): (content, stat) for site, night, content, stat in rows}


def record_night(
    conn: sqlite3.Connection, site_id: str, night: str, digest: str, stat_digest: str, n_files: int
) -> None:
    """Remember a night as processed with this content (replacing an earlier delivery's checksum)."""
    with conn:  # commit now
        conn.execute(
            "insert into nights (site_id, night, content_sha256, stat_sha256, n_files) "
            "values (?, ?, ?, ?, ?) on conflict (site_id, night) do update set "
            "content_sha256 = excluded.content_sha256, stat_sha256 = excluded.stat_sha256, "
            "n_files = excluded.n_files, processed_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
            (site_id, night, digest, stat_digest, n_files),
        )


def get_watermark(conn: sqlite3.Connection, source: str) -> str | None:
    """The watermark of the last fully successful run against ``source``, if any."""
    row = conn.execute("select value from watermarks where source = ?", (source,)).fetchone()
    return None if row is None else str(row[0])


def set_watermark(conn: sqlite3.Connection, source: str, value: str) -> None:
    """Move the watermark of ``source``."""
    with conn:  # commit now
        conn.execute(
            "insert into watermarks (source, value) values (?, ?) on conflict (source) do update "
            "set value = excluded.value, updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
            (source, value),
        )


def held_instances(conn: sqlite3.Connection, site_id: str, study_uid: str) -> set[str]:
    """SOP instance UIDs of a study already fetched for this site (from any source)."""
    rows = conn.execute(
        "select sop_instance_uid from instances where site_id = ? and study_uid = ?", (site_id, study_uid)
    )
    return {str(r[0]) for r in rows}


def is_held(conn: sqlite3.Connection, site_id: str, sop_instance_uid: str) -> bool:
    """True if this instance was already fetched for this site."""
    row = conn.execute(
        "select 1 from instances where site_id = ? and sop_instance_uid = ?", (site_id, sop_instance_uid)
    ).fetchone()
    return row is not None


def record_instance(
    conn: sqlite3.Connection,
    *,
    site_id: str,
    sop_instance_uid: str,
    study_uid: str,
    source: str,
    night: str,
    sha256: str,
) -> None:
    """Add an instance to the ledger (first write wins: a later duplicate changes nothing)."""
    with conn:  # commit now
        conn.execute(
            "insert into instances (site_id, sop_instance_uid, study_uid, source, night, sha256) "
            "values (?, ?, ?, ?, ?, ?) on conflict (site_id, sop_instance_uid) do nothing",
            (site_id, sop_instance_uid, study_uid, source, night, sha256),
        )


@dataclass(frozen=True)
class RefusedInstance:
    """An instance a fetch refused (one row of ``refused_instances``)."""

    site_id: str
    source: str
    locator: str
    name: str
    study_key: str
    study_uid: str | None
    sha256: str
    reason: str
    night: str
    refused_at: str = ""


_REFUSED_COLUMNS = "site_id, source, locator, name, study_key, study_uid, sha256, reason, night, refused_at"


def refused_instances(
    conn: sqlite3.Connection, site_id: str, source: str, study_key: str | None = None
) -> list[RefusedInstance]:
    """The instances of ``source`` refused for this site (of one study if ``study_key`` is given)."""
    query = f"select {_REFUSED_COLUMNS} from refused_instances where site_id = ? and source = ?"
    params: tuple[str, ...] = (site_id, source)
    if study_key is not None:
        query += " and study_key = ?"
        params += (study_key,)
    return [RefusedInstance(*row) for row in conn.execute(query + " order by refused_at, name", params)]


def record_refused(conn: sqlite3.Connection, refused: RefusedInstance) -> None:
    """Remember an instance as refused (a later refusal of the same instance replaces the row)."""
    with conn:  # commit now
        conn.execute(
            "insert into refused_instances "
            "(site_id, source, locator, name, study_key, study_uid, sha256, reason, night) "
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?) on conflict (site_id, source, locator) do update set "
            "name = excluded.name, study_key = excluded.study_key, study_uid = excluded.study_uid, "
            "sha256 = excluded.sha256, reason = excluded.reason, night = excluded.night, "
            "refused_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
            (
                refused.site_id,
                refused.source,
                refused.locator,
                refused.name,
                refused.study_key,
                refused.study_uid,
                refused.sha256,
                refused.reason,
                refused.night,
            ),
        )


def forget_refused(conn: sqlite3.Connection, site_id: str, source: str, locators: Iterable[str]) -> int:
    """Drop refusals (the instance was fetched after all, or is gone from the source); return how many."""
    with conn:  # commit now
        return sum(
            conn.execute(
                "delete from refused_instances where site_id = ? and source = ? and locator = ?",
                (site_id, source, locator),
            ).rowcount
            for locator in locators
        )
