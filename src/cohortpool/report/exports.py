"""Tables as CSV and XLSX, analysis sets as SPSS ``.sav``: all byte-identical for the same results.

Spreadsheet safety: a cell that starts with ``= + - @`` (or a tab / carriage return) is a formula to Excel
and LibreOffice (OWASP "CSV injection"); in CSV such text gets a leading apostrophe, in XLSX it is stored as
a typed string that is never evaluated. Text that is a plain number (``-1.25``) cannot be a formula and is
left alone.

Determinism: openpyxl stamps the save time into ``docProps/core.xml`` and every zip entry, and ReadStat
stamps the creation date and time into the ``.sav`` header; both are overwritten with fixed values here.
"""

from __future__ import annotations

import csv
import io
import math
import re
import zipfile
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cohortpool.contract.csvio import formula_safe
from cohortpool.report.layout import lay_out, parts
from cohortpool.stats.result import ResultTable

_FIXED_TIME = datetime(2000, 1, 1)
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")
_W3CDTF = re.compile(r"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:)")


def _cell(value: Any) -> Any:
    """A frame value as it goes into a file: missing -> empty, numpy scalars -> Python."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    if hasattr(value, "item"):
        return value.item()
    return value


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """One table as UTF-8 CSV (``\\n`` line ends, header row, formula-escaped text)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([formula_safe(str(c)) for c in frame.columns])
    for row in frame.itertuples(index=False):
        writer.writerow([formula_safe(_cell(v)) for v in row])
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def write_csvs(results: Sequence[ResultTable], folder: Path) -> list[Path]:
    """Every result's frame as ``<name>.csv`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    return [write_csv(r.frame, folder / f"{r.name}.csv") for r in results]


def _sheet_title(name: str, used: set[str]) -> str:
    base = _SHEET_BAD.sub("_", name)[:31] or "sheet"
    title, n = base, 1
    while title.lower() in used:
        n += 1
        title = f"{base[: 31 - len(str(n)) - 1]}~{n}"
    used.add(title.lower())
    return title


def _normalise_zip(data: bytes) -> bytes:
    """Re-pack a zip with fixed entry times and fixed core-properties dates (same content, same bytes)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            payload = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                payload = _W3CDTF.sub(rb"\g<1>2000-01-01T00:00:00Z\g<2>".decode(), payload.decode()).encode()
            entry = zipfile.ZipInfo(info.filename, date_time=_ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o600 << 16
            target.writestr(entry, payload)
    return out.getvalue()


#: a laid-out cell that is a plain number goes into the workbook as a number (keeping its decimals)
_PLAIN_NUMBER = re.compile(r"^-?\d+(?:\.(\d+))?$")
_MAX_WIDTH = 60


def _typed(text: str) -> tuple[Any, str | None]:
    """A laid-out cell as a workbook value and its number format (None: text or a whole number)."""
    match = _PLAIN_NUMBER.match(text)
    if not match:
        return text, None
    decimals = match.group(1)
    if decimals is None:
        return int(text), None
    return float(text), "0." + "0" * len(decimals)


_GROUP_SIZE = re.compile(r"^(.*) \(n = ([^)]*)\)$")


def _sizes_into_cells(headers: list[str], rows: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    """``OP (n = 26)`` headers become ``OP`` with ``[n = 26]`` after each filled cell: the parts of one
    sheet have different group sizes, and one header row cannot carry them all."""
    bare = list(headers)
    moved: dict[int, str] = {}
    for i, header in enumerate(headers):
        match = _GROUP_SIZE.match(header)
        if match:
            bare[i], moved[i] = match.group(1), match.group(2)
    out = [
        [f"{c} [n = {moved[i]}]" if i in moved and c and "[n =" not in c else c for i, c in enumerate(r)]
        for r in rows
    ]
    return bare, out


def paper_rows(result: ResultTable) -> tuple[list[str], list[list[str]]]:
    """The result as printed in the report: pooled rows first, then each site's (a ``Site`` column in
    front when the result is split by site), in the same layout as the HTML tables."""
    split = parts(result)
    if len(split) == 1:
        return lay_out(result, split[0][1])
    headers: list[str] = []
    rows: list[list[str]] = []
    for site, frame in split:
        part_headers, part_rows = _sizes_into_cells(*lay_out(result, frame))
        headers = headers or ["Site", *part_headers]
        rows += [[site or "All sites", *row] for row in part_rows]
    return headers, rows


def _widths(sheet: Any, table: list[list[str]]) -> None:
    from openpyxl.utils import get_column_letter

    for column in range(max((len(r) for r in table), default=0)):
        longest = max((len(r[column]) for r in table if column < len(r)), default=0)
        sheet.column_dimensions[get_column_letter(column + 1)].width = min(max(longest + 2, 8), _MAX_WIDTH)


def _sheet(workbook: Any, title: str, result: ResultTable) -> None:
    """One result as a sheet: its title, the header row (frozen, with the first column), the rows as the
    report prints them (plain numbers as numbers), then the notes."""
    from openpyxl.styles import Alignment, Font, PatternFill

    sheet = workbook.create_sheet(title)
    headers, rows = paper_rows(result)
    sheet.append([result.title])
    sheet["A1"].font = Font(bold=True)
    sheet.append(headers)
    for cell in sheet[2]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    for row in rows:
        typed = [_typed(text) for text in row]
        sheet.append([value for value, _ in typed])
        for cell, (_, number_format) in zip(sheet[sheet.max_row], typed, strict=False):
            if number_format:
                cell.number_format = number_format
    if result.notes:
        sheet.append([])
        for note in result.notes:
            sheet.append([note])
    sheet.freeze_panes = "B3"
    _widths(sheet, [headers, *rows])


def write_xlsx(results: Sequence[ResultTable], path: Path, about: Sequence[tuple[str, str]] = ()) -> Path:
    """One workbook: an "About" sheet (provenance) and one sheet per result in the report's layout."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "About"
    used = {"about"}
    for key, value in about:
        sheet.append([str(key), str(value)])
    for cell in sheet["A"]:
        cell.font = Font(bold=True)
    _widths(sheet, [[str(k), str(v)] for k, v in about])
    for result in results:
        _sheet(workbook, _sheet_title(result.name, used), result)
    for worksheet in workbook.worksheets:
        for row in worksheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and cell.data_type == "f":
                    cell.data_type = "s"  # text that looks like a formula stays text
    workbook.properties.creator = "cohortpool"
    workbook.properties.created = _FIXED_TIME
    buffer = io.BytesIO()
    workbook.save(buffer)
    path.write_bytes(_normalise_zip(buffer.getvalue()))
    return path


# --- SPSS -------------------------------------------------------------------------------------------------

#: variable labels for the columns of the analysis views (docs/data_contract.md section 4)
LABELS: Mapping[str, str] = {
    "site_id": "Site",
    "patient_id": "Patient pseudonym",
    "diagnosis": "Diagnosis (OP osteoporotic, MET metastatic)",
    "age_years": "Age, completed years",
    "sex": "Sex",
    "bmi": "BMI, kg/m2",
    "height_cm": "Height, cm",
    "weight_kg": "Weight, kg",
    "dxa_t_score": "DXA T-score",
    "osteoporosis": "Osteoporosis (T-score <= -2.5)",
    "pathology_confirmed": "Pathology confirmed",
    "primary_tumour": "Primary tumour",
    "n_vertebrae": "Fractured vertebrae, n",
    "level": "Vertebral level",
    "modality": "Modality (XR, CT, MR)",
    "genant_grade": "Genant grade (0 none, 1 mild, 2 moderate, 3 severe)",
    "height_loss_pct": "Vertebral height loss, %",
    "batch_id": "Batch",
}
#: text columns kept as text in SPSS (identifiers: coding them as numbers would invite arithmetic)
KEEP_AS_TEXT = frozenset({"patient_id", "batch_id", "accession_id"})
_SAV_DATE = slice(92, 101)  # header: creation date "dd mmm yy" (SPSS system-file format, record "$FL2")
_SAV_TIME = slice(101, 109)  # header: creation time "hh:mm:ss"


def _spss_frame(
    frame: pd.DataFrame, levels: Mapping[str, Sequence[str]] | None = None
) -> tuple[pd.DataFrame, dict[str, dict[int | float, str]]]:
    """Booleans -> 0/1 and category text -> 1..k codes, each with SPSS value labels.

    Codes follow ``levels`` (the plan's order, e.g. the reference group OP = 1 before MET = 2) where a
    column has one; values it does not name, and other columns, follow in sorted order.
    """
    out = pd.DataFrame(index=range(len(frame)))
    labels: dict[str, dict[int | float, str]] = {}
    for column in frame.columns:
        series = frame[column].reset_index(drop=True)
        present = series.dropna()
        if pd.api.types.is_bool_dtype(series) or (
            len(present) and all(isinstance(v, bool | np.bool_) for v in present)
        ):
            out[column] = series.map(lambda v: math.nan if pd.isna(v) else float(bool(v)))
            labels[column] = {0: "no", 1: "yes"}
            continue
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_datetime64_any_dtype(series):
            out[column] = series
            continue
        if column in KEEP_AS_TEXT:
            out[column] = series.astype(object).where(series.notna(), "")
            continue
        texts = {str(v) for v in series.dropna() if str(v) != ""}
        planned = [str(v) for v in (levels or {}).get(str(column), ()) if str(v) in texts]
        values = [*planned, *sorted(texts - set(planned))]
        codes = {value: i for i, value in enumerate(values, start=1)}
        out[column] = series.map(lambda v, c=codes: c.get(str(v), math.nan) if pd.notna(v) else math.nan)
        labels[column] = {code: value for value, code in codes.items()}
    return out, labels


def write_sav(
    frame: pd.DataFrame, path: Path, label: str, levels: Mapping[str, Sequence[str]] | None = None
) -> Path:
    """An analysis set as an SPSS system file with variable and value labels (coded in ``levels`` order)."""
    import pyreadstat

    data, value_labels = _spss_frame(frame, levels)
    column_labels: dict[str, str | None] = {c: LABELS.get(c, c.replace("_", " ")) for c in data.columns}
    measure = {c: ("nominal" if c in value_labels or c in KEEP_AS_TEXT else "scale") for c in data.columns}
    temporary = path.with_suffix(".sav.part")
    pyreadstat.write_sav(
        data,
        str(temporary),
        file_label=label[:64],
        column_labels=column_labels,
        variable_value_labels=value_labels,
        variable_measure=measure,
    )
    raw = bytearray(temporary.read_bytes())
    temporary.unlink()
    if raw[:4] != b"$FL2":
        raise ValueError(f"{path}: ReadStat wrote no SPSS header ($FL2); cannot fix its timestamp")
    raw[_SAV_DATE] = b"01 Jan 00"
    raw[_SAV_TIME] = b"00:00:00"
    path.write_bytes(bytes(raw))
    return path


def write_savs(
    frames: Mapping[str, pd.DataFrame], folder: Path, levels: Mapping[str, Sequence[str]] | None = None
) -> list[Path]:
    """Each analysis set (``patients``, ``vertebrae``, ...) as ``<name>.sav``, levels in the plan's order."""
    folder.mkdir(parents=True, exist_ok=True)
    return [
        write_sav(frames[name], folder / f"{name}.sav", f"cohortpool {name}", levels)
        for name in sorted(frames)
    ]
