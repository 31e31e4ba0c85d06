"""Reading a submission table: text as submitted, typed per the suite, clear rejections."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from validate_support import CLEAN

from cohortpool.validate.frames import TableRejected, read_table
from cohortpool.validate.suites import load_suite


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "clinical.csv").write_bytes(text.encode("utf-8"))
    return tmp_path


def test_cells_keep_their_submitted_text_and_bad_numbers_become_null_when_typed(tmp_path: Path) -> None:
    text = (CLEAN / "clinical.csv").read_text().replace(",72,", ",72.5,").replace(",22.03,", ",22,03,")
    frames = read_table(_write(tmp_path, text.replace(",22,03,", ",abc,")), load_suite("clinical"))
    assert frames.text.loc[0, "age_years"] == "72.5" and pd.isna(frames.typed.loc[0, "age_years"])
    assert frames.text.loc[0, "bmi"] == "abc" and pd.isna(frames.typed.loc[0, "bmi"])
    assert str(frames.typed["age_years"].dtype) == "Int64"
    assert str(frames.typed["first_exam_date"].dtype) == "datetime64[us]"
    assert pd.isna(frames.text.loc[0, "primary_tumour"])  # empty cell = null, not ""


def test_a_byte_order_mark_is_tolerated(tmp_path: Path) -> None:
    text = "\ufeff" + (CLEAN / "clinical.csv").read_text()
    frames = read_table(_write(tmp_path, text), load_suite("clinical"))
    assert frames.rows_in == 4 and "site_id" in frames.text.columns


def test_semicolon_separated_export_is_rejected_with_a_hint(tmp_path: Path) -> None:
    text = (CLEAN / "clinical.csv").read_text().replace(",", ";")
    with pytest.raises(TableRejected) as caught:
        read_table(_write(tmp_path, text), load_suite("clinical"))
    assert "clinical.csv" in str(caught.value) and "semicolon-separated" in caught.value.problem
    assert caught.value.rows_in == 4


def test_an_invalid_source_row_falls_back_to_the_position(tmp_path: Path) -> None:
    text = (CLEAN / "clinical.csv").read_text()
    lines = text.splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0] + ",0"
    frames = read_table(_write(tmp_path, "\n".join(lines) + "\n"), load_suite("clinical"))
    assert list(frames.source_rows()) == [1, 2, 3, 4]
