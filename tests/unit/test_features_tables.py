"""CSV pseudonymisation with the same keys as the images."""

from __future__ import annotations

import csv
from datetime import date, timedelta

import pytest

from cohortpool.contract.tables import CLINICAL, READS
from cohortpool.deid import Pseudonymiser
from cohortpool.features.tables import TableError, pseudonymise_tables

KEYS = Pseudonymiser(b"k", "site01")
FINDINGS = ["yes", "no"] * 6


def _write(path, header, rows) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _drop(tmp_path):
    _write(
        tmp_path / "clinical.csv",
        ["mrn", "patient_name", "birth_date", "sex", "address", "phone", "height_cm", "weight_kg", "bmi",
         "dxa_t_score", "diagnosis", "pathology_confirmed", "primary_tumour", "first_exam_date"],
        [["M1", "Doe^Jane", "1950-06-15", "F", "1 Road", "555", "160", "61", "23.83", "-2.9", "OP", "no", "",
          "2024-06-14"],
         ["M2", "Roe^Ann", "03/04/1950", "F", "2 Road", "556", "", "", "", "", "MET", "yes", "lung", "bad"]],
    )  # fmt: skip
    _write(
        tmp_path / "reads.csv",
        ["mrn", "accession_number", "modality", "level", "reader", "read_date",
         "fracture_line", "marrow_oedema", "soft_tissue_mass", "bone_destruction", "posterior_wall_bulging",
         "posterior_element_involvement", "wedge_shape", "posterior_fat_signal", "intravertebral_cleft",
         "normal_disc", "disc_compression", "whole_body_collapse", "genant_grade", "height_loss_pct"],
        [["M1", "ACC1", "CT", "L1", "Dr Who", "2024-06-15", *FINDINGS, "2", "31.5"]],
    )  # fmt: skip


def test_tables_get_the_image_pseudonyms_age_and_shifted_dates(tmp_path) -> None:
    _drop(tmp_path)
    out = tmp_path / "out"
    assert pseudonymise_tables(tmp_path, out, KEYS) == {"clinical_rows": 2, "reads_rows": 1}
    clinical = list(csv.DictReader((out / "clinical.csv").open()))
    assert tuple(clinical[0]) == CLINICAL.released
    first, second = clinical
    assert first["patient_id"] == KEYS.patient_id("M1") and first["age_years"] == "73"  # a day before 74
    shifted = date(2024, 6, 14) + timedelta(days=KEYS.shift_days("M1"))  # the images' shift of M1
    assert first["first_exam_date"] == shifted.isoformat() and first["source_row"] == "1"
    assert second["age_years"] == "" and second["first_exam_date"] == ""  # unparseable dates never pass
    reads = list(csv.DictReader((out / "reads.csv").open()))
    assert tuple(reads[0]) == READS.released
    assert reads[0]["accession_id"] == KEYS.accession_id("ACC1") and reads[0]["genant_grade"] == "2"
    text = (out / "clinical.csv").read_text() + (out / "reads.csv").read_text()
    for phi in ("Doe", "1 Road", "555", "Dr Who", "M1", "ACC1", "1950"):
        assert phi not in text


def test_missing_column_names_the_file_and_column(tmp_path) -> None:
    _drop(tmp_path)
    (tmp_path / "reads.csv").write_text("mrn,modality\nM1,CT\n")
    with pytest.raises(TableError, match=r"reads.csv: missing column\(s\) accession_number"):
        pseudonymise_tables(tmp_path, tmp_path / "out", KEYS)
