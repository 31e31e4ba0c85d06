"""Analysis sets out of the warehouse: Hive-partitioned Parquet for other engines, and a checksum
that a report records so its numbers can be traced to the exact warehouse content."""

from __future__ import annotations

import hashlib
from pathlib import Path

from cohortpool.warehouse import sql
from cohortpool.warehouse.connect import connect

#: The analysis views of docs/data_contract.md section 4, in a fixed order.
ANALYSIS_VIEWS: tuple[str, ...] = (
    "analysis.patients",
    "analysis.vertebra_reads",
    "analysis.vertebrae",
    "analysis.findings_long",
    "analysis.site_counts",
)

#: The views the checksum hashes. findings_long is left out: it is the UNPIVOT of vertebra_reads and
#: vertebrae (both hashed), fixed by the code version a report also records, and 12 times their size,
#: so hashing it would multiply the cost (about 10 s of CPU per 10^6 reads) for no information.
CHECKSUM_VIEWS: tuple[str, ...] = tuple(v for v in ANALYSIS_VIEWS if v != "analysis.findings_long")


def export_parquet(db_path: str | Path, out_dir: str | Path, *, wait_seconds: float = 0.0) -> dict[str, Path]:
    """Write every analysis view to ``out_dir/<view>/site_id=<site>/data_0.parquet``.

    DuckDB's ``COPY ... PARTITION_BY (site_id)`` writes the Hive layout that Spark, Polars, pyarrow and
    DuckDB itself read back with the site as a column (``read_parquet(..., hive_partitioning=true)``).
    Each view's folder is replaced (``OVERWRITE``); other files in ``out_dir`` are left alone.

    Returns
    -------
    dict[str, Path]
        View name (e.g. ``"patients"``) -> its folder.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    con = connect(db_path, read_only=True, wait_seconds=wait_seconds)
    try:
        for view in ANALYSIS_VIEWS:
            target = out / view.split(".", 1)[1]
            sql.run_sql(con, "analysis/export_view_parquet", identifiers={"view": view}, path=str(target))
            written[view.split(".", 1)[1]] = target
    finally:
        con.close()
    return written


def checksum(db_path: str | Path, *, as_of_seq: int | None = None, wait_seconds: float = 0.0) -> str:
    """A sha256 of the analysis views' content (now, or as of load ``as_of_seq``).

    Deterministic and independent of physical layout: every row's values are hashed and the hashes
    summed per view, so the same content gives the same checksum whatever the row order, load order,
    file or storage version; the per-view counts and sums are hashed again into one sha256.
    Reports record it (with the load_seq) as provenance.
    """
    con = connect(db_path, read_only=True, wait_seconds=wait_seconds)
    try:
        digest = hashlib.sha256()
        for view in CHECKSUM_VIEWS:
            n_rows, sum_high, sum_low = sql.query_rows(
                con, "analysis/checksum_view", identifiers={"view": f"{view}_asof"}, as_of_seq=as_of_seq
            )[0]
            digest.update(f"{view}\t{n_rows}\t{sum_high}\t{sum_low}\n".encode())
        return digest.hexdigest()
    finally:
        con.close()
