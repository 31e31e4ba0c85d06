"""A withdrawn patient's values leave the hub's files too (issue 16 item 5): admitted submissions (table
rows and their de-identified DICOM), validated batches (accepted rows, quarantine and warning lines, a
page naming them) and refused arrivals. Real files, sealed submissions and a real DuckDB warehouse; the
hub's verification and loads run again afterwards and refuse nothing, change nothing."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cohortpool.cli import app
from cohortpool.contract.erasure import ERASURE_FILE
from cohortpool.pipeline.erasure import REDACTED
from cohortpool.pipeline.hub import erase_withdrawn_files, load_into_warehouse
from cohortpool.pipeline.records import SubmissionSummary
from cohortpool.pipeline.transfer import SubmissionRefusedError, verify_submission
from cohortpool.transport import check_submission
from cohortpool.warehouse import checksum
from erasure_support import allowed, erase_csv_rows, holding, stores
from transport_support import FINGERPRINT, SECRET, make_submission
from warehouse_batches import make_tables, write_batch

SITE = "site01"
NIGHT0, NIGHT1, NIGHT2, NIGHT3 = "2026-10-31", "2026-11-01", "2026-11-02", "2026-11-03"
REGISTRY: dict[str, str | None] = {SITE: FINGERPRINT}
#: a value of the withdrawing patient, findable in any file's bytes
TRACE = "trace-0b8e6c4d2a9f47e1"


def _issue(patient_id: str, value: str) -> dict[str, object]:
    return {
        "table": "clinical",
        "source_row": 1,
        "key": f"{SITE}|{patient_id}",
        "expectation": "expect_column_values_to_be_between",
        "severity": "critical",
        "reason": "bmi outside 10-60",
        "value": value,
    }


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, lineterminator="\n").encode()


def _deliver(
    out: Path, night: str, tables: dict[str, pd.DataFrame], withdrawn: list[str] | None = None
) -> Path:
    """One night as the hub keeps it: the sealed submission (tables, DICOM under dicom/<patient_id>/,
    withdrawn.csv) and its validated batch (a quarantine line and a page about the first patient)."""
    files = {f"{name}.csv": _csv(frame) for name, frame in tables.items()}
    for pid in tables["clinical"]["patient_id"]:
        files[f"dicom/{pid}/2.25.1/2.25.2/2.25.3.dcm"] = hashlib.shake_256(f"{pid}{TRACE}".encode()).digest(
            300
        )
    if withdrawn is not None:
        files["withdrawn.csv"] = _csv(pd.DataFrame({"site_id": SITE, "patient_id": withdrawn}))
    make_submission(out / "submissions" / SITE / night, SITE, night, files)
    first = str(tables["clinical"]["patient_id"][0])
    batch = write_batch(
        out / "validated" / SITE / night,
        SITE,
        night,
        tables,
        quarantine=[_issue(first, TRACE if night != NIGHT3 else "41.0")],
        withdrawn=withdrawn,
    )
    (batch / "data_docs").mkdir()
    (batch / "data_docs" / "index.html").write_text(
        f"<html><body><td>patient_id</td><td>{first}, P0000000000000000</td></body></html>\n",
        encoding="utf-8",
    )
    return batch


@pytest.fixture
def cohort() -> dict[str, pd.DataFrame]:
    return make_tables(SITE, 4, seed=1)


@pytest.fixture
def gone(cohort: dict[str, pd.DataFrame]) -> str:
    return str(cohort["clinical"]["patient_id"][0])


def _without(tables: dict[str, pd.DataFrame], patient_id: str) -> dict[str, pd.DataFrame]:
    return {n: f[f["patient_id"] != patient_id].reset_index(drop=True) for n, f in tables.items()}


def _nights(out: Path, cohort: dict[str, pd.DataFrame], gone: str) -> dict[str, Path]:
    """Night 1: four patients; night 2: the same four again (a cumulative export); night 3: a newcomer and
    the first patient's withdrawal. A refused arrival of night 2 also holds the patient."""
    newcomer = make_tables(SITE, 1, seed=5, patient_offset=50)
    batches = {
        NIGHT1: _deliver(out, NIGHT1, cohort),
        NIGHT2: _deliver(out, NIGHT2, cohort),
        NIGHT3: _deliver(out, NIGHT3, newcomer, withdrawn=[gone]),
    }
    rejected = out / "rejected" / SITE / NIGHT2
    shutil.copytree(out / "submissions" / SITE / NIGHT1, rejected)
    (rejected / "reason.json").write_text('{"reason": "sha256"}\n', encoding="utf-8")
    return batches


def _load(out: Path, *batches: Path) -> list[str]:
    return [load_into_warehouse(out / "warehouse.duckdb", b, out_dir=out).status for b in batches]


def test_after_a_withdrawal_no_file_of_the_hub_holds_the_patient(
    tmp_path: Path, cohort: dict[str, pd.DataFrame], gone: str
) -> None:
    out = tmp_path / "out"
    batches = _nights(out, cohort, gone)
    assert len(holding(out, gone)) > 10  # the test sees the patient where they are

    summary = load_into_warehouse(out / "warehouse.duckdb", batches[NIGHT1], out_dir=out)
    assert summary.erased_files == 0  # nobody withdrawn yet: nothing touched
    _load(out, batches[NIGHT2])
    done = load_into_warehouse(out / "warehouse.duckdb", batches[NIGHT3], out_dir=out)

    assert [rel for rel in holding(out, gone) if not allowed(rel)] == []
    assert holding(out, TRACE) == []  # the quarantine line quoting the patient's value went too
    for night in (NIGHT1, NIGHT2):
        assert not (out / "submissions" / SITE / night / "dicom" / gone).exists()
    assert not (out / "rejected" / SITE / NIGHT2 / "dicom" / gone).exists()
    # three submissions' and two batches' tables, issue lines and page, the refused copy: rewritten or removed
    assert done.erased_files == 2 * (3 + 1) + 2 * (3 + 1 + 1) + (3 + 1)
    assert "file(s) of the hub rewritten or removed" in done.line()

    # the other patients' rows are kept byte for byte
    submitted = out / "submissions" / SITE / NIGHT1 / "clinical.csv"
    expected, _ = erase_csv_rows(_csv(cohort["clinical"]), (gone,))
    assert submitted.read_bytes() == expected == _csv(_without(cohort, gone)["clinical"])
    accepted = pq.read_table(batches[NIGHT1] / "accepted" / "reads.parquet").to_pandas()
    assert len(accepted) == len(cohort["reads"]) - 6 and gone not in set(accepted["patient_id"])
    page = (batches[NIGHT1] / "data_docs" / "index.html").read_text(encoding="utf-8")
    assert REDACTED in page and "P0000000000000000" in page

    # the record: files, checksums before and after, counts, the pseudonym; nothing else of the patient
    record = json.loads((out / "submissions" / SITE / NIGHT1 / ERASURE_FILE).read_text(encoding="utf-8"))
    assert record["patients"] == [gone] and record["night"] == NIGHT1
    assert record["files"]["clinical.csv"]["erased"] == 1
    assert record["files"]["clinical.csv"]["sha256"] == hashlib.sha256(submitted.read_bytes()).hexdigest()
    assert record["files"][f"dicom/{gone}/2.25.1/2.25.2/2.25.3.dcm"]["sha256"] is None
    listed = json.loads((out / "submissions" / SITE / NIGHT1 / "submission.json").read_text())["files"]
    assert record["files"]["clinical.csv"]["before_sha256"] == listed["clinical.csv"]
    # the withdrawing night names the patient only as withdrawn: its folders were not rewritten
    assert not (out / "submissions" / SITE / NIGHT3 / ERASURE_FILE).exists()


def test_verification_and_loads_after_an_erasure_refuse_nothing_and_change_nothing(
    tmp_path: Path, cohort: dict[str, pd.DataFrame], gone: str
) -> None:
    out = tmp_path / "out"
    batches = _nights(out, cohort, gone)
    _load(out, *batches.values())
    before, sums = stores(out), checksum(out / "warehouse.duckdb")

    for night in (NIGHT1, NIGHT2, NIGHT3):
        folder = out / "submissions" / SITE / night
        summary = SubmissionSummary(SITE, night, folder, "", {}, {})
        assert verify_submission(summary, REGISTRY, out) is summary  # checked again: not refused
    # the hub's re-run: every batch already loaded (its checksum as validated), nothing erased again
    assert _load(out, *batches.values()) == ["unchanged"] * 3
    assert checksum(out / "warehouse.duckdb") == sums
    assert stores(out) == before
    assert not (out / "rejected" / SITE / NIGHT1).exists()

    # at the door an erasure record counts for nothing: it is an unlisted file from outside
    folder = out / "submissions" / SITE / NIGHT1
    _, problems = check_submission(folder, SITE, NIGHT1, REGISTRY, secret=SECRET)
    assert {p.check for p in problems} >= {"unlisted", "missing"}
    # and the record explains only what the hub made: a file changed since is refused
    (folder / "reads.csv").write_bytes((folder / "reads.csv").read_bytes() + b"\n")
    with pytest.raises(SubmissionRefusedError, match=r"reads\.csv"):
        verify_submission(SubmissionSummary(SITE, NIGHT1, folder, "", {}, {}), REGISTRY, out)


def test_a_late_older_night_carrying_the_patient_is_erased_too(
    tmp_path: Path, cohort: dict[str, pd.DataFrame], gone: str
) -> None:
    out = tmp_path / "out"
    batches = _nights(out, cohort, gone)
    _load(out, *batches.values())
    late = _deliver(out, NIGHT0, cohort)
    assert len(holding(out, gone)) > 10
    done = load_into_warehouse(out / "warehouse.duckdb", late, out_dir=out)
    assert done.status == "loaded" and done.erased_rows == 1 + 6 + 6 + 1
    assert done.erased_files == (3 + 1) + (3 + 1 + 1)
    assert [rel for rel in holding(out, gone) if not allowed(rel)] == []
    summary = SubmissionSummary(SITE, NIGHT0, out / "submissions" / SITE / NIGHT0, "", {}, {})
    assert verify_submission(summary, REGISTRY, out) is summary
    assert _load(out, late) == ["unchanged"]


def test_the_order_nights_arrive_in_changes_neither_warehouse_nor_files(
    tmp_path: Path, cohort: dict[str, pd.DataFrame], gone: str
) -> None:
    in_order, withdrawal_first, again = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out in (in_order, withdrawal_first, again):
        _nights(out, cohort, gone)
    nights = (NIGHT1, NIGHT2, NIGHT3)
    _load(in_order, *(in_order / "validated" / SITE / n for n in nights))
    _load(again, *(again / "validated" / SITE / n for n in nights))
    _load(withdrawal_first, *(withdrawal_first / "validated" / SITE / n for n in (NIGHT3, NIGHT1, NIGHT2)))

    sums = {checksum(out / "warehouse.duckdb") for out in (in_order, withdrawal_first, again)}
    assert len(sums) == 1
    assert [rel for rel in holding(withdrawal_first, gone) if not allowed(rel)] == []
    # the same deliveries and withdrawals give the same erased files, byte for byte, whatever the order
    assert stores(in_order) == stores(withdrawal_first) == stores(again)


def test_a_batch_erased_before_its_first_load_loads_as_it_would_have(
    tmp_path: Path, cohort: dict[str, pd.DataFrame], gone: str
) -> None:
    out = tmp_path / "out"
    batches = _nights(out, cohort, gone)
    _load(out, *batches.values())
    # a second warehouse (restored from an old backup) is given the batches as they are now: erased
    fresh = tmp_path / "restored.duckdb"
    results = [load_into_warehouse(fresh, b, out_dir=out) for b in batches.values()]
    assert [r.status for r in results] == ["loaded"] * 3
    assert checksum(fresh) == checksum(out / "warehouse.duckdb")
    # the rows erased before the load count as erased for withdrawal: accepted = held + withdrawn
    assert [load_into_warehouse(out / "warehouse.duckdb", b).status for b in batches.values()] == [
        "unchanged"
    ] * 3


def test_cohortpool_load_erases_the_hub_folders_beside_the_batch(
    tmp_path: Path, cohort: dict[str, pd.DataFrame], gone: str
) -> None:
    out = tmp_path / "out"
    batches = _nights(out, cohort, gone)
    db = tmp_path / "w.duckdb"
    runner = CliRunner()
    for night, batch in batches.items():
        result = runner.invoke(app, ["load", str(batch), "--db", str(db), "--no-publish"])
        assert result.exit_code == 1, result.output  # each batch has a quarantined line
        assert ("rewritten" in result.output) == (night == NIGHT3)
    assert [rel for rel in holding(out, gone) if not allowed(rel)] == []
    again = runner.invoke(app, ["load", *map(str, batches.values()), "--db", str(db), "--no-publish"])
    assert again.output.count("unchanged") == 3 and "rewritten" not in again.output


def test_a_batch_being_written_and_a_killed_erasure_are_handled(
    tmp_path: Path, cohort: dict[str, pd.DataFrame], gone: str
) -> None:
    out = tmp_path / "out"
    batches = _nights(out, cohort, gone)
    staging = out / "validated" / SITE / f"{NIGHT2}.partial"  # a validation still writing: not the hub's yet
    shutil.copytree(batches[NIGHT2], staging)
    # a pass killed after staging a rewrite: the original is in place, the staged copy is left over
    leftover = out / "submissions" / SITE / NIGHT1 / ".clinical.csv.erasing"
    leftover.write_bytes(b"half")
    _load(out, *batches.values())
    assert gone in set(
        pq.read_table(staging / "accepted" / "clinical.parquet").column("patient_id").to_pylist()
    )
    assert not leftover.exists()
    summary = SubmissionSummary(SITE, NIGHT1, out / "submissions" / SITE / NIGHT1, "", {}, {})
    assert verify_submission(summary, REGISTRY, out) is summary


def test_the_run_wide_pass_erases_an_arrival_refused_after_the_last_load(
    tmp_path: Path, cohort: dict[str, pd.DataFrame], gone: str
) -> None:
    out = tmp_path / "out"
    batches = _nights(out, cohort, gone)
    _load(out, *batches.values())
    refused = shutil.copytree(out / "rejected" / SITE / NIGHT2, out / "rejected" / SITE / NIGHT0)
    shutil.rmtree(refused / "dicom")
    (refused / "erasure.json").unlink()
    (refused / "clinical.csv").write_bytes(_csv(cohort["clinical"]))  # no load of the site comes after it
    (refused / "dicom" / gone).mkdir(parents=True)
    (refused / "dicom" / gone / "1.dcm").write_bytes(b"DICM")

    erased = erase_withdrawn_files(out / "warehouse.duckdb", out)
    assert (erased.files_rewritten, erased.files_removed) == (1, 1)
    assert [rel for rel in holding(out, gone) if not allowed(rel)] == []
    assert erase_withdrawn_files(out / "warehouse.duckdb", out).files == 0  # nothing left: nothing written


def test_a_csv_is_erased_record_by_record_quoted_newlines_and_bytes_kept(tmp_path: Path) -> None:
    """Records spanning lines go whole, every other byte (CRLF, quoting, non-UTF-8) stays, the header is
    kept even when it names the pseudonym, and a file the CSV reader refuses is erased line by line."""
    gone, kept = "P00000000000000AA", "P00000000000000BB"
    data = (
        f'patient_id,note\r\n{kept},"two\r\nlines"\r\n{gone},"also\r\ntwo"\r\n'
        f'{kept},caf\xe9\r\n{kept},"with {gone} inside"\r\n'
    ).encode("latin-1")
    erased, count = erase_csv_rows(data, [gone])
    assert count == 2
    assert erased == (f'patient_id,note\r\n{kept},"two\r\nlines"\r\n{kept},caf\xe9\r\n').encode("latin-1")
    # a cell past the CSV reader's field limit: by line
    huge = f"patient_id,note\n{gone},{'x' * 200_000}\n{kept},ok\n".encode()
    erased, count = erase_csv_rows(huge, [gone])
    assert (erased, count) == (f"patient_id,note\n{kept},ok\n".encode(), 1)


def test_many_withdrawn_patients_are_found_in_one_scan_and_nothing_else_is_taken(tmp_path: Path) -> None:
    """A thousand withdrawn pseudonyms against a table of other patients: only theirs go, and a pseudonym
    that merely starts like one of theirs (a longer token) is theirs only if it contains it."""
    withdrawn = [f"P{n:016X}" for n in range(1, 1001)]
    others = [f"P{n:016X}" for n in range(5000, 5100)]
    rows = [f"{p},1" for p in others] + [f"{withdrawn[500]},2", f"X{withdrawn[7]}Z,3"]
    erased, count = erase_csv_rows(("patient_id,v\n" + "\n".join(rows) + "\n").encode(), withdrawn)
    assert count == 2
    assert erased.decode().splitlines()[1:] == [f"{p},1" for p in others]


def test_a_large_table_is_erased_with_bounded_memory(tmp_path: Path) -> None:
    """The erasure streams: rewriting a 60 MB table and a 10^6-row Parquet file takes far less memory
    than the files (it used to hold each whole file, and every rewritten file of a folder, at once)."""
    import subprocess
    import sys

    import pyarrow as pa

    folder = tmp_path / "out" / "validated" / SITE / NIGHT1
    (folder / "accepted").mkdir(parents=True)
    gone = "PFFFFFFFFFFFFFFFF"
    ids = [f"P{n:016X}" for n in range(1_000_000)]
    ids[123_456] = gone
    pq.write_table(
        pa.table({"patient_id": ids, "value": list(range(1_000_000))}), folder / "accepted" / "reads.parquet"
    )
    with (folder / "warnings.csv").open("w", encoding="utf-8") as stream:
        stream.write("table,key,value\n")
        for n, pid in enumerate(ids):
            stream.write(f"reads,{SITE}|{pid},{'v' * 40}{n}\n")
    (folder / "summary.json").write_text("{}", encoding="utf-8")
    script = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from cohortpool.pipeline.erasure import erase_withdrawn\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"s = erase_withdrawn(Path({str(tmp_path / 'out')!r}), {SITE!r}, [{gone!r}])\n"
        "grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base\n"
        "print(s.files_rewritten, s.erased, grown // 1024)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    rewritten, erased, grown_mb = map(int, done.stdout.split())
    assert (rewritten, erased) == (2, 2)
    assert grown_mb < 60, f"the erasure grew the process by {grown_mb} MB"
    assert gone not in (folder / "warnings.csv").read_text(encoding="utf-8")
    table = pq.read_table(folder / "accepted" / "reads.parquet")
    assert table.num_rows == 999_999 and gone not in set(
        table.column("patient_id").to_pylist()[123_000:124_000]
    )
