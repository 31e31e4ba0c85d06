"""The site tables' declared handling: every column has one, and the checks the site applies agree with
the hub's suites (so a value the site lets through is never one the hub would reject as a bad code, and
a value the site replaces is one the hub would reject anyway)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cohortpool.config import TablesConfig
from cohortpool.contract import resources
from cohortpool.contract.tables import (
    CLINICAL,
    DROP_TABLE_FILES,
    INVALID,
    NUMBER,
    READS,
    SITE_TABLES,
    WITHDRAWN,
    Handling,
    SiteColumn,
)
from cohortpool.deid import Pseudonymiser
from cohortpool.features.tables import pseudonymise_tables
from cohortpool.synth.cohort import build_cohort
from cohortpool.synth.defects import kinds_for, plant_rows, truth_entries
from cohortpool.synth.tables import clinical_rows, reads_rows, write_csv
from cohortpool.synth.vendors import site_profiles
from cohortpool.synth.writer import DEFAULT_NIGHT


def _suite(table: str) -> list[dict[str, Any]]:
    document = json.loads((resources.suites_dir() / f"{table}.json").read_text(encoding="utf-8"))
    return list(document["expectations"])


def _value_sets(table: str) -> dict[str, tuple[set[str], str]]:
    """column -> (value set as text, severity) of the suite's unconditional in-set checks."""
    return {
        e["kwargs"]["column"]: ({str(v) for v in e["kwargs"]["value_set"]}, e["meta"]["severity"])
        for e in _suite(table)
        if e["type"] == "expect_column_values_to_be_in_set"
        and "row_condition" not in e["kwargs"]
        and isinstance(e["kwargs"]["value_set"], list)
    }


@pytest.mark.parametrize("table", SITE_TABLES, ids=lambda t: t.name)
def test_every_kept_code_has_the_suites_value_set(table: Any) -> None:
    suite = _value_sets(table.name)
    coded = {c.name: set(c.values) for c in table.columns if c.handling is Handling.KEEP and c.values}
    assert coded, table.name
    for name, values in coded.items():
        assert suite[name] == (values, "error"), name
    # and every error-severity value set of a site column is applied at the site
    site_columns = {c.name for c in table.columns}
    assert {c for c, (_, severity) in suite.items() if severity == "error" and c in site_columns} == set(
        coded
    )


@pytest.mark.parametrize("table", SITE_TABLES, ids=lambda t: t.name)
def test_every_kept_measurement_is_a_number_column_of_the_suite(table: Any) -> None:
    numeric = {
        e["kwargs"]["column"]
        for e in _suite(table.name)
        if e["type"] == "expect_column_type_to_be" and e["kwargs"]["type_"] == "float64"
    }
    kept = {c.name for c in table.columns if c.handling is Handling.KEEP and c.numeric}
    assert kept == numeric - {"age_years"}


def test_the_default_vocabulary_is_the_suites_primary_tumour_set() -> None:
    values, severity = _value_sets("clinical")["primary_tumour"]
    assert set(TablesConfig().primary_tumour_vocabulary) == values and severity == "warning"
    assert CLINICAL.column("primary_tumour").handling is Handling.VOCABULARY


def test_every_export_column_is_released_or_dropped_and_nothing_else_leaves() -> None:
    for table in (*SITE_TABLES, WITHDRAWN):
        released = set(table.released) - {"site_id", "source_row"}
        named = {c.released_as or c.name for c in table.columns if c.handling is not Handling.DROP}
        assert named == released, table.name
    assert DROP_TABLE_FILES == ("clinical.csv", "reads.csv", "withdrawn.csv")
    assert WITHDRAWN.released == ("site_id", "patient_id")


@pytest.mark.parametrize("text", ["160", "61.5", "23.83", "-2.9", "0", ".5", "100.0", "230.00", "-.25"])
def test_measurements_as_sites_write_them_pass(text: str) -> None:
    assert NUMBER.fullmatch(text)


@pytest.mark.parametrize(
    "text", ["1234567", "0207946", "12.34567", "1950-06-15", "23,5", "+5", "23.4 kg", "1e3", "", "--1"]
)
def test_identifiers_and_other_forms_are_no_measurement(text: str) -> None:
    assert not NUMBER.fullmatch(text)


def test_a_kept_column_must_say_what_it_admits() -> None:
    with pytest.raises(ValueError, match="needs a value set or a number format"):
        SiteColumn("x", Handling.KEEP)


def test_the_synthetic_consortium_meets_the_contract_but_for_its_planted_defects(tmp_path: Path) -> None:
    """The demo's three sites, tables only: every primary_tumour maps cleanly to the default vocabulary,
    and the only cells not released as sent are the planted sex, level and birth-date defects."""
    found: set[tuple[str, str, int, str]] = set()
    expected: set[tuple[str, str, int, str]] = set()
    keys_of = {"sex_text": "sex", "unknown_level": "level", "birth_after_exam": "birth_date"}
    for profile in site_profiles(3, 7):
        cohort = build_cohort(profile, 7, DEFAULT_NIGHT)
        clinical, reads = clinical_rows(cohort), reads_rows(cohort)
        planted = plant_rows(cohort, kinds_for(profile.number, 3), 7, clinical, reads)
        drop = tmp_path / profile.site_id
        drop.mkdir()
        write_csv(drop / "clinical.csv", CLINICAL.export_columns, clinical)
        write_csv(drop / "reads.csv", READS.export_columns, reads)
        for entry in truth_entries(cohort, planted, clinical, reads, profile.site_id):
            if entry["kind"] in keys_of:
                expected.add((profile.site_id, f"{entry['table']}.csv", entry["row"], keys_of[entry["kind"]]))
        keys = Pseudonymiser(b"contract-test", profile.site_id)
        result = pseudonymise_tables(drop, tmp_path / "out" / profile.site_id, keys)
        assert result.error is None
        for (file, column, kind, _), group in result.report.groups.items():
            assert kind in ("invalid", "not derived"), (profile.site_id, file, column, kind)
            found |= {(profile.site_id, file, row, column) for row in group.rows}
        out = tmp_path / "out" / profile.site_id
        released = (out / "clinical.csv").read_text(encoding="utf-8") + (out / "reads.csv").read_text("utf-8")
        marked = {
            e for e in expected if e[0] == profile.site_id and e[3] != "birth_date"
        }  # not derived: empty
        assert released.count(INVALID) == len(marked)
    assert found == expected and len(expected) == 3
