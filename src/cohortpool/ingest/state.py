"""The ingest stage's memory between runs: one SQLite file in the site's state folder.

It holds what must survive a crash and be safe under two processes at once: the drop-folder nights
already processed (with their content checksum, so a re-delivered night is noticed), the watermark of
each PACS source (moved only after a fully successful run), and the ledger of instances already fetched
(so an overlapping query never writes a study twice). SQLite gives atomic, locked transactions from the
standard library; a JSON file would need hand-written locking. The state folder is site-internal: the
ledger holds DICOM UIDs and must never be sent to the hub.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
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
