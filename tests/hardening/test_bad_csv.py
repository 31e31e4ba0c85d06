"""Bad site tables (tests/hardening/bad_csv.py) through the site's pseudonymiser, validation and the load.

At the site each broken ``clinical.csv`` is either pseudonymised correctly or refused whole with an error
naming the file, the line or the column and what to do (never a crash, never a date passed unshifted,
never an unknown column sent on). At the hub, formula cells stay inert in every CSV written and
injection-looking identifiers never reach SQL as code.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bad_csv import EXTRA_TOKEN, FORMULAS, SQL_COLUMN, SQL_SITE, VARIANTS
from support import cli, csv_cells, live_formulas

from cohortpool.contract.tables import INVALID
from cohortpool.deid import Pseudonymiser, deidentify_tree
from cohortpool.features import (
    TableResult,
    instance_record,
    package_submission,
    pseudonymise_tables,
    write_manifest,
)
from cohortpool.synth import write_consortium

pytestmark = pytest.mark.xdist_group("hardening-csv")
KEY = b"hardening-csv-key-0123456789abcdef"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A clean one-site drop (3 patients) and its submission."""
    root = tmp_path_factory.mktemp("bad-csv")
    write_consortium(root / "landing", sites=1, max_patients=3)
    drop = next((root / "landing" / "site01").iterdir())
    sub = root / "submission"
    result = deidentify_tree(
        drop, sub, root / "vault", "site01", KEY, drop.name, record_hook=instance_record, workers=1
    )
    pseudonymise_tables(drop, sub, Pseudonymiser(KEY, "site01", 365))
    write_manifest(result.records, sub / "imaging_manifest.csv", "site01")
    package_submission(sub, "site01", drop.name, {}, result.counts, "test")
    return drop, sub


def _variant(base: tuple[Path, Path], name: str, tmp_path: Path) -> Path:
    drop, _ = base
    variant = tmp_path / name
    variant.mkdir()
    shutil.copy(drop / "reads.csv", variant / "reads.csv")
    clean = (drop / "clinical.csv").read_text(encoding="utf-8")
    (variant / "clinical.csv").write_bytes(VARIANTS[name](clean))
    return variant


def _pseudonymise(folder: Path, out: Path, vault: Path | None = None) -> TableResult:
    return pseudonymise_tables(folder, out, Pseudonymiser(KEY, "site01", 365), vault_dir=vault, night="n")


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("gbk", ("clinical.csv", "line 2", "not UTF-8", "re-export")),
        ("semicolons", ("clinical.csv", "missing column", "separate columns with ','")),
        ("renamed", ("clinical.csv", "missing column", "sex")),
        ("long_line", ("clinical.csv", "line 3, column 13 (primary_tumour)", "longer than 1 MiB", "shorten")),
    ],
)
def test_a_broken_table_is_refused_whole_naming_file_line_or_column(base, tmp_path, name, words) -> None:
    folder = _variant(base, name, tmp_path)
    error = _pseudonymise(folder, tmp_path / "out").error
    assert error is not None
    for word in words:
        assert word in error, error
    assert "王秀英" not in error  # the message names the place, never the value
    assert not (tmp_path / "out" / "clinical.csv").exists()  # refused whole
    assert (tmp_path / "out" / "reads.csv").exists()  # the other table still goes


def test_a_long_address_the_site_drops_does_not_refuse_the_table(base, tmp_path) -> None:
    # was: "line 3 cannot be read as CSV: field larger than field limit (131072)", the table refused
    _, sub = base
    folder = _variant(base, "long_address", tmp_path)
    result = _pseudonymise(folder, tmp_path / "out")
    assert result.error is None
    assert (tmp_path / "out" / "clinical.csv").read_bytes() == (sub / "clinical.csv").read_bytes()


def test_a_utf8_bom_gives_the_same_table_as_without(base, tmp_path) -> None:
    _, sub = base
    folder = _variant(base, "utf8_bom", tmp_path)
    _pseudonymise(folder, tmp_path / "out")
    assert (tmp_path / "out" / "clinical.csv").read_bytes() == (sub / "clinical.csv").read_bytes()


def test_an_extra_column_is_never_sent_on(base, tmp_path) -> None:
    folder = _variant(base, "extra_column", tmp_path)
    _pseudonymise(folder, tmp_path / "out")
    text = (tmp_path / "out" / "clinical.csv").read_text(encoding="utf-8")
    assert EXTRA_TOKEN not in text and "email" not in text


def test_excel_dates_are_never_passed_through_unshifted(base, tmp_path) -> None:
    folder = _variant(base, "excel_dates", tmp_path)
    _pseudonymise(folder, tmp_path / "out")
    with (tmp_path / "out" / "clinical.csv").open(encoding="utf-8", newline="") as handle:
        first = next(csv.DictReader(handle))
    assert first["age_years"] == "" and first["first_exam_date"] == ""
    text = (tmp_path / "out" / "clinical.csv").read_text(encoding="utf-8")
    assert "1931" not in text and "45000" not in text


def test_formula_cells_never_leave_and_are_inert_in_the_vault(base, tmp_path) -> None:
    folder = _variant(base, "formulas", tmp_path)
    _pseudonymise(folder, tmp_path / "out", tmp_path / "vault")
    out = tmp_path / "out" / "clinical.csv"
    assert live_formulas(out) == []
    released = csv_cells(out)
    for column, value in FORMULAS.items():
        assert value not in released and "'" + value not in released, column  # not a code: replaced
    first = next(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert first["primary_tumour"] == "other" and first["sex"] == INVALID
    vault = tmp_path / "vault" / "tables" / "n.csv"
    assert live_formulas(vault) == []
    kept = csv_cells(vault)
    for value in FORMULAS.values():
        assert "'" + value in kept  # the original, for the site to fix, made inert


@pytest.mark.integration
def test_formula_cells_and_an_injection_column_through_validate_and_load(base, tmp_path) -> None:
    from cohortpool.validate import validate_submission
    from cohortpool.warehouse import connect, load_batch

    drop, sub = base
    mine = tmp_path / "submission"
    shutil.copytree(sub, mine)
    header, *body = list(csv.reader(io.StringIO((mine / "clinical.csv").read_text(encoding="utf-8"))))
    for column, value in FORMULAS.items():  # as a careless tool would write them: not escaped
        body[0][header.index(column)] = value
    header.append(SQL_COLUMN)
    body = [[*row, "1"] for row in body]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *body])
    (mine / "clinical.csv").write_text(buffer.getvalue(), encoding="utf-8")
    package_submission(mine, "site01", drop.name, {}, {}, "test")

    outcome = validate_submission(mine, tmp_path / "validated")
    assert outcome.tables["clinical"].quarantined >= 1  # the sex and diagnosis values are not in the set
    for name in ("quarantine.csv", "warnings.csv"):
        assert live_formulas(tmp_path / "validated" / name) == [], name
    db = tmp_path / "warehouse.duckdb"
    load_batch(db, tmp_path / "validated")
    con = connect(db, read_only=True)
    try:
        query = "select column_name from duckdb_columns() where table_name = 'clinical'"
        columns = {r[0] for r in con.execute(query).fetchall()}
        assert SQL_COLUMN not in columns
        assert con.execute("select count(*) from raw.clinical").fetchone()[0] == len(body) - 1
        assert con.execute("select count(*) from raw.batches").fetchone()[0] == 1
    finally:
        con.close()


def test_an_injection_looking_site_id_is_refused_before_any_work(base, tmp_path) -> None:
    drop, sub = base
    proc = cli("deid", str(drop), str(tmp_path / "out"), "--site", SQL_SITE, "--vault", str(tmp_path / "v"))
    assert proc.returncode == 2 and "--site" in proc.stderr and "a-z, 0-9 and _" in proc.stderr
    assert not (tmp_path / "out").exists()
    mine = tmp_path / "submission"
    shutil.copytree(sub, mine)
    meta = json.loads((mine / "submission.json").read_text())
    (mine / "submission.json").write_text(json.dumps({**meta, "site_id": SQL_SITE}))
    proc = cli("validate", str(mine), "--out", str(tmp_path / "validated"))
    assert proc.returncode == 2 and "site_id must be" in proc.stderr
    assert not (tmp_path / "validated").exists() or not any((tmp_path / "validated").iterdir())


def test_stats_compare_output_is_formula_safe(tmp_path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("=cmd|' /C calc'!A0,group\n1,a\n2,a\n3,b\n5,b\n7,a\n8,b\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "cohortpool", "stats", "compare", str(table), "--group", "group",
         "--continuous", "=cmd|' /C calc'!A0", "--out", str(tmp_path / "out.csv")],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert live_formulas(tmp_path / "out.csv") == []
    assert any(c.startswith("'=cmd") for c in csv_cells(tmp_path / "out.csv"))
