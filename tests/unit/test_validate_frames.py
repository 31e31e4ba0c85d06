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


# ---- the fast CSV path (Arrow) reads exactly what pandas reads, or leaves the file to pandas ----------

ODD_FILES = {
    "plain": b"a,b,c\n1,2,3\n4,5,6\n",
    "no final newline": b"a,b,c\n1,2,3\n4,5,6",
    "crlf": b"a,b,c\r\n1,2,3\r\n4,5,6\r\n",
    "cr only": b"a,b,c\r1,2,3\r4,5,6\r",
    "quoted": b'a,b,c\n"1,5","say ""hi""",3\n',
    "newline in quotes": b'a,b,c\n"line one\nline two",2,3\n"x\r\ny",5,6\n',
    "quote inside a field": b'a,b,c\nab"c,2,3\n',
    "blank lines": b"a,b,c\n\n1,2,3\n\n\n4,5,6\n\n",
    "whitespace line": b"a,b,c\n1,2,3\n   \n4,5,6\n",
    "short row": b"a,b,c\n1,2\n4,5,6\n",
    "long row": b"a,b,c\n1,2,3,4\n4,5,6\n",
    "trailing comma": b"a,b,c,\n1,2,3,\n",
    "repeated name": b"a,b,a\n1,2,3\n",
    "empty name": b"a,,c\n1,2,3\n",
    "quoted header": b'"a","b","c"\n1,2,3\n',
    "header only": b"a,b,c\n",
    "empty": b"",
    "newline only": b"\n",
    "spaces kept": b"a,b,c\n 1 ,2  ,  3\n",
    "empty and quoted empty": b'a,b,c\n,"",3\n',
    "na words": b"a,b,c\nNA,null,NaN\nN/A,None,-\n",
    "unicode": "a,b,c\nÉlodie,钟,😀\n".encode(),
    "semicolons": b"a;b;c\n1;2;3\n",
    "tabs": b"a\tb\tc\n1\t2\t3\n",
    "nul byte": b"a,b,c\n1,\x002,3\n",
    "bad utf-8": b"a,b,c\n1,\xff,3\n",
    "utf-8 surrogate": b"a,b,c\n1,\xed\xa0\x80,3\n",
    "overlong utf-8": b"a,b,c\n1,\xc0\xaf,3\n",
    "bad utf-8 header": b"a,\xff,c\n1,2,3\n",
    "formula": b"a,b,c\n=1+1,@x,-2\n",
    "many columns": (
        ",".join(f"c{i}" for i in range(40)) + "\n" + ",".join(map(str, range(40))) + "\n"
    ).encode(),
}


@pytest.mark.parametrize("name", sorted(ODD_FILES))
def test_the_arrow_reader_agrees_with_pandas_or_declines(name: str) -> None:
    from cohortpool.validate.frames import parse_with_arrow, parse_with_pandas

    data = ODD_FILES[name]
    fast = parse_with_arrow(data)
    try:
        reference = parse_with_pandas(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError):
        assert fast is None, "Arrow read a file pandas refuses"
        return
    if fast is not None:
        pd.testing.assert_frame_equal(fast, reference, check_exact=True)


def test_the_arrow_reader_takes_the_common_files() -> None:
    from cohortpool.validate.frames import parse_with_arrow

    for name in ("plain", "crlf", "quoted", "newline in quotes", "unicode", "formula", "many columns"):
        assert parse_with_arrow(ODD_FILES[name]) is not None, name
    for table in ("clinical", "reads", "imaging_manifest"):
        assert parse_with_arrow((CLEAN / f"{table}.csv").read_bytes()) is not None, table


NUMBERS = [
    "0",
    "-0",
    "7",
    "007",
    "-12",
    "2.5",
    "2.0",
    ".5",
    "5.",
    "-.5",
    "1e3",
    "1E-2",
    "+5",
    " 7",
    "7 ",
    "inf",
    "-inf",
    "nan",
    "NaN",
    "1e30",
    "-1e400",
    "123456789012345678",
    "1234567890123456789",
    "99999999999999999999",
    "9223372036854775807",
    "9223372036854775808",
    "0x10",
    "1_000",
    "1,5",
    "abc",
    "",
    "١٢",
    "22.030000000000001",
    "3.141592653589793238462643383279",
    None,
]


@pytest.mark.parametrize("gx_type", ["Int64", "float64"])
def test_typed_numbers_are_what_pandas_to_numeric_makes_of_them(gx_type: str) -> None:
    """The meaning of a number cell is ``pd.to_numeric(errors="coerce")``; Int64 keeps whole numbers only.

    Cells that cannot be a 64-bit integer (1e30, 20 digits, inf) are null instead of failing the run.
    """
    import numpy as np

    from cohortpool.validate.frames import _cast

    rng = np.random.default_rng(5)
    cells = NUMBERS + [f"{x:.{rng.integers(0, 12)}f}" for x in rng.normal(0, 1e4, 500)]
    cells += [str(int(x)) for x in rng.integers(-(10**15), 10**15, 200)]
    text = pd.Series(cells, dtype="str")
    got = _cast(text, gx_type)
    reference = pd.to_numeric(text, errors="coerce").astype("float64")
    if gx_type == "Int64":
        whole = reference.where(
            np.isfinite(reference) & (reference == reference.round()) & (reference.abs() < 2.0**63)
        )
        assert str(got.dtype) == "Int64"
        for cell, value, number in zip(cells, got, whole, strict=True):
            if pd.isna(number):
                assert pd.isna(value), cell
            elif cell.isascii() and cell.lstrip("-").isdigit() and len(cell.lstrip("-")) <= 18:
                assert value == int(cell), cell  # up to 18 digits: exact
            else:
                assert value == int(number), cell
    else:
        assert str(got.dtype) == "float64"
        pd.testing.assert_series_equal(got, reference, check_names=False)
