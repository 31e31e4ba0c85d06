"""The imaging manifest: one row per series, from headers read before cleaning.

The de-identification workers call :func:`instance_record` on each original header (the sequence
family needs the series description and protocol, which the profile removes) together with the
output's pseudonymous identifiers and the de-identification's decision (``released``: does the
de-identified file keep this element as it is?); :func:`write_manifest` groups the instance rows into
series. A value leaves only from an element the de-identified file keeps (so the manifest, and the
hub's quarantine list and Data Docs after it, never say more than the DICOM does), and only as a
category or a number: the modality as a DICOM defined term, never a byte string's repr. The series
description, protocol and sequence names and the scan options are read, never copied: they decide the
sequence family.

A record also carries the patient characteristics the released header keeps (``patient_age_years``
from PatientAge, ``patient_sex``): the release-risk check counts them for a submission's DICOM
(:func:`cohortpool.features.kanon.imaging_quasi_identifiers`). They are not manifest columns, and
:func:`write_manifest` leaves them out (the CSV's columns are the data contract's).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag

from cohortpool.contract.csvio import write_csv
from cohortpool.contract.dicom_terms import MODALITIES

MANIFEST_COLUMNS = (
    "site_id",
    "patient_id",
    "accession_id",
    "study_uid",
    "series_uid",
    "modality",
    "study_date",
    "manufacturer",
    "model",
    "field_strength",
    "sequence_family",
    "repetition_time",
    "echo_time",
    "slice_thickness",
    "pixel_spacing",
    "image_rows",
    "image_columns",
    "instance_count",
    "source_row",
)
# fat suppression wins over weighting: a fat-suppressed T2 (SPAIR, STIR) is its own family in the study
_FS = re.compile(r"\b(SPAIR|STIR|TIRM|FS|FATSAT|FAT SAT|FAT SUP\w*|FATSUP\w*|SPIR|CHESS|DIXON)\b")
# Philips names prefix the plane: "sT1W_TSE" is a sagittal T1-weighted series
_T1 = re.compile(r"\bS?T1W?\b")
_T2 = re.compile(r"\bS?T2W?\b")
_SEPARATORS = re.compile(r"[^A-Z0-9]+")


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    if value is None or isinstance(value, bytes | bytearray):
        return ""  # a text attribute written as bytes (OB, UN): no text to take, never a repr
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join("" if isinstance(v, bytes | bytearray) else str(v) for v in value)
    return str(value).strip()


def _number(ds: Dataset, keyword: str) -> str:
    text = _text(ds, keyword).split("\\")[0].strip()
    try:
        float(text)
    except ValueError:
        return ""
    return text


def sequence_family(ds: Dataset) -> str:
    """``T1``, ``T2``, ``FS`` (fat-suppressed) or ``other`` for an MR header; empty otherwise.

    Descriptions first: fat suppression named anywhere (series description, protocol name, sequence
    name, scan options ``FS``) makes ``FS``; otherwise the first of series description, protocol name
    and sequence name that names T1 or T2 decides (the series description says what the series is; a
    protocol name may be a reused template). When they say nothing, the contrast implied by repetition
    and echo times (short TR and TE: T1; long TR and TE: T2).
    """
    if _text(ds, "Modality").upper() != "MR":
        return ""
    # words split on anything but letters and digits: "t2_tse_sag_spair" -> "T2 TSE SAG SPAIR"
    fields = [
        _SEPARATORS.sub(" ", _text(ds, k).upper())
        for k in ("SeriesDescription", "ProtocolName", "SequenceName", "ScanOptions")
    ]
    if any(_FS.search(words) for words in fields):
        return "FS"
    for words in fields[:3]:
        t1, t2 = _T1.search(words), _T2.search(words)
        if t1 and not t2:
            return "T1"
        if t2 and not t1:
            return "T2"
    try:
        tr, te = float(_number(ds, "RepetitionTime")), float(_number(ds, "EchoTime"))
    except ValueError:
        return "other"
    if tr < 1000 and te < 30:
        return "T1"
    if tr >= 1500 and te >= 60:
        return "T2"
    return "other"


def _tags(*keywords: str) -> tuple[BaseTag, ...]:
    return tuple(BaseTag(tag_for_keyword(keyword) or 0) for keyword in keywords)


#: the attributes the series facts are read from, with the character set that decodes their text (the
#: patient's age and sex are the same for every instance of a series, so the memo still decodes once)
_FACT_TAGS = _tags(
    *("SpecificCharacterSet", "Modality", "Manufacturer", "ManufacturerModelName", "SeriesDescription"),
    *("ProtocolName", "SequenceName", "ScanOptions", "MagneticFieldStrength", "RepetitionTime"),
    *("EchoTime", "SliceThickness", "PixelSpacing", "ImagerPixelSpacing", "Rows", "Columns"),
    *("PatientAge", "PatientSex"),
)
#: read to decide the sequence family (or to decode text), never copied: taken whatever the
#: de-identification does with them; every other fact tag only when the de-identified file keeps it
_READ_ONLY_TAGS = frozenset(
    _tags("SpecificCharacterSet", "SeriesDescription", "ProtocolName", "SequenceName", "ScanOptions")
)
#: PatientAge (AS): three digits and a unit, days, weeks, months or years
_AGE = re.compile(r"^(\d{3})([DWMY])$")


def age_in_years(value: str) -> str:
    """Completed years of a PatientAge value (``"070Y"`` -> ``"70"``, ``"030M"`` -> ``"2"``); empty when
    it is not a valid age string."""
    match = _AGE.match(value.strip().upper())
    if match is None:
        return ""
    number, unit = int(match[1]), match[2]
    days = {"D": 1, "W": 7}
    return str(number if unit == "Y" else number // 12 if unit == "M" else number * days[unit] // 365)


def instance_record(
    ds: Dataset, ids: dict[str, str], released: Callable[[int], bool] | None = None
) -> dict[str, Any]:
    """One instance's manifest facts (called by the de-identification worker before cleaning).

    ``released(tag)`` is the de-identification's decision: true when the de-identified file keeps that
    element as the header has it. A fact is read only from an element it releases (``None``: the
    header is already de-identified, e.g. an output file read back).

    The facts are read from a private copy of the raw elements, never from ``ds`` itself: reading
    converts pydicom's raw elements in place, and the cleaner must see the header as the file has it
    whether or not a manifest is made. The copy is keyed by the raw bytes, so the instances of a
    series (which repeat the same values) decode them once per worker.
    """
    tags = [t for t in _FACT_TAGS if t in _READ_ONLY_TAGS or released is None or released(t)]
    key = _raw_facts_key(ds, tags)
    facts = _facts(key) if key is not None else _series_facts(_copy(ds, tags))
    date = ids.get("study_date", "")
    return {
        "patient_id": ids["patient_id"],
        "accession_id": ids.get("accession_id", ""),
        "study_uid": ids["study_uid"],
        "series_uid": ids["series_uid"],
        "study_date": f"{date[:4]}-{date[4:6]}-{date[6:8]}" if len(date) == 8 else "",
        **facts,
    }


_CHARSET = BaseTag(0x00080005)
_RawKey = tuple[tuple[BaseTag, str | None, bytes | None, bool, bool], ...]


def _raw_facts_key(ds: Dataset, tags: Iterable[BaseTag]) -> _RawKey | None:
    """The raw elements of ``tags`` the facts depend on (without their file offsets), or ``None`` when
    one of them was already converted (a dataset built in memory): then it is read from a copy."""
    store = ds._dict
    key = []
    for tag in tags:
        elem = store.get(tag)
        if elem is None:
            continue
        if isinstance(elem, RawDataElement):
            key.append((tag, elem.VR, elem.value, elem.is_implicit_VR, elem.is_little_endian))
        elif tag == _CHARSET:  # decoded already by any text read before: its value as raw CS text
            values = elem.value if isinstance(elem.value, list | tuple | MultiValue) else [elem.value]
            text = "\\".join(str(v or "") for v in values)
            if not text.isascii():
                return None
            key.append((tag, "CS", text.encode("ascii"), False, True))
        else:
            return None
    return tuple(key)


def _copy(ds: Dataset, tags: Iterable[BaseTag]) -> Dataset:
    """A data set holding only the elements of ``tags`` that ``ds`` has (the element objects shared:
    reading converts a raw one in the copy's store, not in ``ds``)."""
    copy = Dataset()
    for tag in tags:
        elem = ds._dict.get(tag)
        if elem is not None:
            copy._dict[tag] = elem
    return copy


@lru_cache(maxsize=4096)
def _facts(key: _RawKey) -> dict[str, Any]:
    copy = Dataset()
    for tag, vr, value, implicit, little in key:
        copy._dict[tag] = RawDataElement(tag, vr, len(value or b""), value, 0, implicit, little)
    return _series_facts(copy)


def _series_facts(ds: Dataset) -> dict[str, Any]:
    """The manifest columns that describe the series, not the instance's identity."""
    modality = _text(ds, "Modality")
    if modality not in MODALITIES:
        modality = ""
    spacing = _text(ds, "PixelSpacing") or _text(ds, "ImagerPixelSpacing")
    return {
        "modality": modality,
        "manufacturer": _text(ds, "Manufacturer"),
        "model": _text(ds, "ManufacturerModelName"),
        "field_strength": _number(ds, "MagneticFieldStrength") if modality == "MR" else "",
        "sequence_family": sequence_family(ds),
        "repetition_time": _number(ds, "RepetitionTime"),
        "echo_time": _number(ds, "EchoTime"),
        "slice_thickness": _number(ds, "SliceThickness"),
        "pixel_spacing": spacing.split("\\")[0].strip() if spacing else "",
        "image_rows": _text(ds, "Rows"),
        "image_columns": _text(ds, "Columns"),
        # not manifest columns: what the release-risk check counts (module docstring)
        "patient_age_years": age_in_years(_text(ds, "PatientAge")),
        "patient_sex": _text(ds, "PatientSex").upper(),
    }


def series_rows(records: Iterable[dict[str, Any]], site_id: str) -> list[dict[str, Any]]:
    """Group instance records into series (first non-empty value of each column wins)."""
    series: dict[tuple[str, str, str], dict[str, Any]] = {}
    for record in records:
        key = (record["patient_id"], record["study_uid"], record["series_uid"])
        row = series.get(key)
        if row is None:
            series[key] = {**record, "site_id": site_id, "instance_count": 1}
            continue
        row["instance_count"] += 1
        for column, value in record.items():
            if value and not row.get(column):
                row[column] = value
    rows = [series[k] for k in sorted(series)]
    for number, row in enumerate(rows, start=1):
        row["source_row"] = number
    return rows


def write_manifest(records: Iterable[dict[str, Any]], path: Path, site_id: str) -> int:
    """Write ``imaging_manifest.csv`` (contract section 2); returns the number of series."""
    rows = series_rows(records, site_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_csv(path, MANIFEST_COLUMNS, rows)
