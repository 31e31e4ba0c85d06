"""Every expectation of every suite catches a row planted to fail it, and flags nothing else.

One GX run per table (GX is slow to start): the clean fixture table is cloned to a few dozen rows, one
defect is planted per row, and the set of (source row, expectation) the run reports must equal exactly the
planted set. A last test proves every expectation of the suites has a planted row here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from validate_support import CLEAN, read_rows, write_rows

from cohortpool.validate import run as run_module
from cohortpool.validate.frames import read_table
from cohortpool.validate.quarantine import split_table
from cohortpool.validate.run import SuiteRunner, expectation_label
from cohortpool.validate.suites import TABLES, load_suite

Row = dict[str, str]


@dataclass(frozen=True)
class Plant:
    """Set ``column`` to ``value`` in the next unused row matching ``where``; expect ``labels`` there."""

    column: str
    value: str
    labels: tuple[str, ...]
    where: Callable[[Row], bool] = lambda row: True


def _any(**equals: str) -> Callable[[Row], bool]:
    return lambda row: all(row[k] == v for k, v in equals.items())


NN = "column_values_to_not_be_null"
RX = "column_values_to_match_regex"
IN = "column_values_to_be_in_set"
BT = "column_values_to_be_between"
DATE = "column_values_to_match_strftime_format"

CLINICAL = [
    Plant("age_years", "abc", (f"{RX}(age_years)", f"{NN}(age_years)")),
    # no 64-bit integer: null when typed (it used to crash the run)
    Plant("age_years", "1e30", (f"{RX}(age_years)", f"{NN}(age_years)")),
    Plant("height_cm", "1,70", (f"{RX}(height_cm)",)),
    Plant("weight_kg", "abc", (f"{RX}(weight_kg)",)),
    Plant("bmi", "22,5", (f"{RX}(bmi)", f"{NN}(bmi)")),
    Plant("dxa_t_score", "x", (f"{RX}(dxa_t_score)", f"{NN}(dxa_t_score)")),
    Plant("first_exam_date", "2023-02-30", (f"{DATE}(first_exam_date)", f"{NN}(first_exam_date)")),
    # a valid date in an impossible year: the format passes, the year does not
    Plant("first_exam_date", "0001-03-01", (f"{RX}(first_exam_date)",)),
    Plant("first_exam_date", "2205-03-01", (f"{RX}(first_exam_date)",)),
    Plant("source_row", "x", (f"{RX}(source_row)", f"{NN}(source_row)")),
    *[
        Plant(c, "", (f"{NN}({c})",))
        for c in (
            "site_id",
            "patient_id",
            "age_years",
            "sex",
            "bmi",
            "dxa_t_score",
            "diagnosis",
            "pathology_confirmed",
            "first_exam_date",
            "source_row",
        )
    ],
    Plant("site_id", "site03", (f"{IN}(site_id)",)),
    Plant("patient_id", "p1234", (f"{RX}(patient_id)",)),
    Plant("sex", "male", (f"{IN}(sex)",)),
    Plant("diagnosis", "VCF", (f"{IN}(diagnosis)",), _any(diagnosis="OP")),
    Plant("pathology_confirmed", "Y", (f"{IN}(pathology_confirmed)",)),
    Plant("age_years", "-1", (f"{BT}(age_years)",)),
    Plant("bmi", "230.00", (f"{BT}(bmi)",)),
    Plant("dxa_t_score", "5.0", (f"{BT}(dxa_t_score)",)),
    Plant("height_cm", "90", (f"{BT}(height_cm)",)),
    Plant("weight_kg", "400", (f"{BT}(weight_kg)",)),
    Plant(
        "primary_tumour",
        "lung",
        ('column_values_to_be_null(primary_tumour) where diagnosis=="OP"',),
        _any(diagnosis="OP"),
    ),
    Plant(
        "primary_tumour",
        "",
        ('column_values_to_not_be_null(primary_tumour) where diagnosis=="MET"',),
        _any(diagnosis="MET"),
    ),
    Plant("primary_tumour", "pancreas", (f"{IN}(primary_tumour)",), _any(diagnosis="MET")),
    Plant("source_row", "0", (f"{BT}(source_row)",)),
]

FINDINGS = [
    "fracture_line",
    "marrow_oedema",
    "soft_tissue_mass",
    "bone_destruction",
    "posterior_wall_bulging",
    "posterior_element_involvement",
    "wedge_shape",
    "posterior_fat_signal",
    "intravertebral_cleft",
    "normal_disc",
    "disc_compression",
    "whole_body_collapse",
]
GRADE = "column_values_to_be_between(height_loss_pct) where genant_grade=="
READS = [
    Plant("genant_grade", "2.5", (f"{RX}(genant_grade)", f"{NN}(genant_grade)")),
    Plant("height_loss_pct", "30%", (f"{RX}(height_loss_pct)", f"{NN}(height_loss_pct)")),
    Plant("source_row", "x", (f"{RX}(source_row)", f"{NN}(source_row)")),
    *[
        Plant(c, "", (f"{NN}({c})",), _any(modality="CT"))
        for c in (
            "site_id",
            "patient_id",
            "accession_id",
            "modality",
            "level",
            *FINDINGS,
            "genant_grade",
            "height_loss_pct",
            "source_row",
        )
    ],
    Plant("site_id", "site03", (f"{IN}(site_id)",)),
    Plant("patient_id", "P12", (f"{RX}(patient_id)",)),
    Plant("accession_id", "A12", (f"{RX}(accession_id)",)),
    Plant("modality", "US", (f"{IN}(modality)",), _any(modality="CT")),
    Plant("level", "L7", (f"{IN}(level)",)),
    *[Plant(c, "maybe", (f"{IN}({c})",), _any(modality="CT")) for c in FINDINGS],
    Plant("genant_grade", "4", (f"{IN}(genant_grade)",)),
    Plant("height_loss_pct", "120", (f"{BT}(height_loss_pct)", f"{GRADE}2")),
    Plant(
        "marrow_oedema",
        "yes",
        ('column_values_to_be_in_set(marrow_oedema) where modality=="XR"',),
        _any(modality="XR"),
    ),
    Plant("genant_grade", "0", (f"{GRADE}0",)),
    Plant("genant_grade", "1", (f"{GRADE}1",)),
    Plant("height_loss_pct", "10", (f"{GRADE}2",)),
    Plant("genant_grade", "3", (f"{GRADE}3",)),
    Plant("source_row", "0", (f"{BT}(source_row)",)),
]

MR = 'where modality=="MR"'
PAIR = f"column_pair_values_a_to_be_greater_than_b(repetition_time, echo_time) {MR}"


def _fam(family: str) -> Callable[[Row], bool]:
    return _any(modality="MR", sequence_family=family)


MANIFEST = [
    Plant("study_date", "20230115", (f"{DATE}(study_date)", f"{NN}(study_date)")),
    Plant("study_date", "1024-01-15", (f"{RX}(study_date)",)),
    Plant("field_strength", "3T", (f"{RX}(field_strength)",), _any(modality="MR")),
    Plant(
        "repetition_time",
        "abc",
        (f"{RX}(repetition_time)", f"column_values_to_not_be_null(repetition_time) {MR}"),
        _fam("T2"),
    ),
    Plant(
        "echo_time",
        "abc",
        (f"{RX}(echo_time)", f"column_values_to_not_be_null(echo_time) {MR}"),
        _fam("T2"),
    ),
    Plant("slice_thickness", "3mm", (f"{RX}(slice_thickness)",), _any(modality="CT")),
    Plant("pixel_spacing", "0,7", (f"{RX}(pixel_spacing)",)),
    Plant("image_rows", "64.5", (f"{RX}(image_rows)",)),
    # a whole number too long for INTEGER (it used to crash the run when the batch was written)
    Plant("image_columns", "12345678901", (f"{RX}(image_columns)", f"{BT}(image_columns)")),
    Plant("source_row", "99999999999999999999", (f"{RX}(source_row)", f"{NN}(source_row)")),
    Plant("image_columns", "x", (f"{RX}(image_columns)",)),
    Plant("instance_count", "x", (f"{RX}(instance_count)", f"{NN}(instance_count)")),
    Plant("source_row", "x", (f"{RX}(source_row)", f"{NN}(source_row)")),
    *[
        Plant(c, "", (f"{NN}({c})",), _any(modality="DX"))
        for c in (
            "site_id",
            "patient_id",
            "accession_id",
            "study_uid",
            "series_uid",
            "modality",
            "study_date",
            "instance_count",
            "source_row",
        )
    ],
    Plant("site_id", "site03", (f"{IN}(site_id)",)),
    Plant("patient_id", "bad", (f"{RX}(patient_id)",)),
    Plant("accession_id", "bad", (f"{RX}(accession_id)",)),
    Plant("study_uid", "1.2.3", (f"{RX}(study_uid)",)),
    Plant("series_uid", "1.2.840.1", (f"{RX}(series_uid)",)),
    Plant("modality", "US", (f"{IN}(modality)",), _any(modality="DX")),
    Plant("sequence_family", "PD", (f"{IN}(sequence_family)",), _fam("T2")),
    Plant("sequence_family", "", (f"column_values_to_not_be_null(sequence_family) {MR}",), _fam("T2")),
    Plant("repetition_time", "", (f"column_values_to_not_be_null(repetition_time) {MR}",), _fam("T2")),
    Plant("echo_time", "", (f"column_values_to_not_be_null(echo_time) {MR}",), _fam("T2")),
    Plant("field_strength", "30", (f"{BT}(field_strength)",), _any(modality="MR")),
    Plant(
        "repetition_time",
        "50000",
        (
            f"{BT}(repetition_time)",
            'column_values_to_be_between(repetition_time) where sequence_family=="T2"',
        ),
        _fam("T2"),
    ),
    Plant("echo_time", "2000", (f"{BT}(echo_time)",), _any(modality="CT")),
    Plant(
        "echo_time",
        "700",
        (PAIR, 'column_values_to_be_between(echo_time) where sequence_family=="T1"'),
        _fam("T1"),
    ),
    *[
        Plant(col, value, (f'column_values_to_be_between({col}) where sequence_family=="{fam}"',), _fam(fam))
        for col, value, fam in (
            ("repetition_time", "2000", "T1"),
            ("echo_time", "40", "T1"),
            ("repetition_time", "1000", "T2"),
            ("echo_time", "20", "T2"),
            ("repetition_time", "500", "FS"),
            ("echo_time", "5", "FS"),
        )
    ],
    Plant("slice_thickness", "20", (f"{BT}(slice_thickness)",), _any(modality="CT")),
    Plant("pixel_spacing", "25", (f"{BT}(pixel_spacing)",)),
    Plant("image_rows", "0", (f"{BT}(image_rows)",)),
    Plant("image_columns", "70000", (f"{BT}(image_columns)",)),
    Plant("instance_count", "0", (f"{BT}(instance_count)",)),
    Plant("source_row", "0", (f"{BT}(source_row)",)),
]

PLANTS = {"clinical": CLINICAL, "reads": READS, "imaging_manifest": MANIFEST}
#: uniqueness is planted by appending an exact copy (flagged) and by reusing a source_row (both flagged)
UNIQUE = {
    "clinical": "column_values_to_be_unique(patient_id)",
    "reads": "compound_columns_to_be_unique(patient_id, level, modality)",
    "imaging_manifest": "column_values_to_be_unique(series_uid)",
}
COPIES = 14


def _clone(table: str) -> tuple[list[str], list[Row]]:
    """The clean table repeated COPIES times with fresh pseudonyms/UIDs, renumbered."""
    header, base = read_rows(CLEAN / f"{table}.csv")
    rows = []
    for k in range(COPIES):
        for row in base:
            new = dict(row)
            new["patient_id"] = row["patient_id"][:-2] + f"{k:02X}"
            if "accession_id" in new:
                new["accession_id"] = row["accession_id"][:-2] + f"{k:02X}"
            for uid in ("study_uid", "series_uid"):
                if uid in new:
                    new[uid] = f"{row[uid]}{k}"
            rows.append(new)
    for number, row in enumerate(rows, 1):
        row["source_row"] = str(number)
    return header, rows


def _plant(table: str, tmp: Path) -> tuple[Path, set[tuple[int, str]]]:
    header, rows = _clone(table)
    expected: set[tuple[int, str]] = set()
    used: set[int] = set()
    for plant in PLANTS[table]:
        position = next(i for i, r in enumerate(rows) if i not in used and plant.where(r))
        used.add(position)
        rows[position][plant.column] = plant.value
        expected |= {(position + 1, label) for label in plant.labels}
    # an exact copy of an untouched row, appended: only the copy is quarantined
    original = next(i for i in range(len(rows)) if i not in used)
    used.add(original)
    rows.append({**rows[original], "source_row": str(len(rows) + 1)})
    expected.add((len(rows), UNIQUE[table]))
    # two rows claiming the same source_row: both are flagged (nothing says which is right)
    first, second = [i for i in range(len(rows) - 1) if i not in used][:2]
    rows[second]["source_row"] = rows[first]["source_row"]
    expected.add((first + 1, "column_values_to_be_unique(source_row)"))
    path = tmp / table
    path.mkdir()
    write_rows(path / f"{table}.csv", header, rows)
    return path, expected


@pytest.fixture(scope="module")
def runner() -> SuiteRunner:
    return SuiteRunner()


@pytest.mark.parametrize(
    ("table", "by_columns"),
    [*((t, False) for t in TABLES), ("reads", True)],
    ids=[*TABLES, "reads-by-columns"],
)
def test_each_planted_row_is_flagged_by_exactly_its_expectations(
    table: str, by_columns: bool, runner: SuiteRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``by_columns``: the large-table path that runs each group of expectations on its own columns."""
    monkeypatch.setattr(run_module, "GROUP_COLUMNS_FROM_ROWS", 0 if by_columns else 10**9)
    folder, expected = _plant(table, tmp_path)
    suite = load_suite(table)
    frames = read_table(folder, suite)
    run = runner.run(suite, frames, "site02")
    assert not run.errored, [o.errored for o in run.errored]
    split = split_table(frames, suite, run.findings)
    reported = pd.concat([split.quarantine, split.warnings])
    got = {(int(r.source_row), r.expectation) for r in reported.itertuples()}
    assert (sorted(got - expected), sorted(expected - got)) == ([], []), "(not planted, not flagged)"
    severities = {r.expectation: r.severity for r in reported.itertuples()}
    for exp in suite.expectations:
        label = expectation_label(exp["type"], exp["kwargs"])
        if label in severities:
            assert severities[label] == exp["meta"]["severity"], label
    assert split.rows_in == len(split.accepted) + split.quarantined


def test_every_row_level_expectation_has_a_planted_failing_row() -> None:
    for table in TABLES:
        planted = {label for plant in PLANTS[table] for label in plant.labels}
        planted |= {UNIQUE[table], "column_values_to_be_unique(source_row)"}
        for exp in load_suite(table).expectations:
            if exp["type"] in ("expect_column_type_to_be", "expect_table_columns_to_match_set"):
                continue  # table-level: tested in test_validate_run.py
            label = expectation_label(exp["type"], exp["kwargs"])
            assert label in planted, f"{table}: no failing-row test for {label}"
