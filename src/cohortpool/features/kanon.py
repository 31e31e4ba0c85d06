"""Re-identification risk of what leaves a site: k-anonymity of the released quasi-identifiers.

A submission releases, per patient, an age at first exam, a sex, a site and a (shifted) first-exam date:
in ``clinical.csv`` (one row per patient), and in the DICOM headers, which keep PatientAge and PatientSex
(Retain Patient Characteristics) and the shifted study dates. These are what an outsider could link to
another source (Sweeney 2002, "k-anonymity: a model for protecting privacy"): the patients sharing one
combination form an equivalence class, and ``k`` is the size of the smallest class (k = 1: some patient
is unique on them). The first-exam date counts at the precision an outsider could link on: the day
when real dates are released, but a date shifted by a secret per-patient offset of up to a year only
says the real one lies within that year, so counting shifted days would call every patient unique
(k = 1 for almost any site) while a linkage can only narrow to the window; ``date_precision``
(``Settings.k_anonymity_date_precision``, chosen from the profile by the caller) coarsens it to the
month or year before counting.

k is computed per source, over ``clinical.csv``'s rows and over the patients of the DICOM headers (age
and sex at their earliest study, the earliest study date; a quasi-identifier the profile removes from
the headers is not counted), and the submission's k is the smaller: a DICOM-only submission is held to
the minimum like any other. With ``Settings.min_k_anonymity`` > 0 a submission below that k is withheld,
and so is one that releases data but has no source to assess k from (e.g. ``reads.csv`` alone): its
manifest is written as ``release_blocked.json`` instead of ``submission.json``, so no hub step takes the
folder for a submission. Computing k is a group-by count; a library (e.g. ARX, sdcMicro) would add
generalisation search we do not use.

A consortium reaches a minimum k by generalising what the tables release (``Settings.tables``: ages in
bands, the first-exam date to the month or year, rare ``primary_tumour`` terms merged into "other"); k is
counted over the released values, so the generalisations count once applied. It may also count more
clinical columns as quasi-identifiers (``tables.extra_quasi_identifiers``). The verdict says what drives
k: the classes smaller than the target (the minimum, or 2 when the check is off: unique patients) and,
per quasi-identifier, the k without it and how many of those patients it alone separates from a class
of the target's size. Counts only: no quasi-identifier value is printed, logged or written.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

QUASI_IDENTIFIERS = ("age_years", "sex", "site_id", "first_exam_date")
SUBMISSION_FILE = "submission.json"
BLOCKED_FILE = "release_blocked.json"
#: the sources k is computed from (``KAnonymity.source``; empty when there is none)
CLINICAL_SOURCE = "clinical.csv"
DICOM_SOURCE = "dicom"
#: manifest record field (:func:`cohortpool.features.manifest.instance_record`) of each quasi-identifier
_RECORD_FIELDS = {"age_years": "patient_age_years", "sex": "patient_sex", "first_exam_date": "study_date"}
_NO_DATE = "9999-99-99"  # orders records without a study date after every dated one


class ReleaseBlockedError(RuntimeError):
    """The submission's k-anonymity is below the configured minimum: it is withheld at the site."""


@dataclass(frozen=True)
class Driver:
    """What one quasi-identifier does to k: the k without it, and how many patients of the classes
    below the target it alone keeps from a class of the target's size."""

    name: str
    k_without: int
    separates: int


@dataclass(frozen=True)
class SourceK:
    """k of one released source: one row per patient over the quasi-identifiers it carries."""

    source: str
    #: the quasi-identifiers this source releases (the others count as one value for everyone)
    quasi_identifiers: tuple[str, ...]
    k: int
    rows: int
    classes: int
    rows_below_min_k: int
    #: the class size the verdict looks below (the minimum k, or 2 when the check is off)
    target: int = 2
    #: size -> number of classes of that size, for the classes below ``target``
    small_classes: Mapping[int, int] = field(default_factory=dict)
    #: per released quasi-identifier (site_id aside: one value per submission), strongest first
    drivers: tuple[Driver, ...] = ()
    #: k had the released ages been banded further (clinical.csv only: the tables' settings reach it)
    what_if: Mapping[str, int] = field(default_factory=dict)

    @property
    def rows_below_target(self) -> int:
        return sum(size * n for size, n in self.small_classes.items())

    def as_dict(self) -> dict[str, Any]:
        return {
            "quasi_identifiers": list(self.quasi_identifiers),
            "k_anonymity": self.k,
            "rows": self.rows,
            "equivalence_classes": self.classes,
            "rows_below_min_k": self.rows_below_min_k,
            "verdict_target": self.target,
            "rows_below_target": self.rows_below_target,
            "small_classes": {str(size): n for size, n in sorted(self.small_classes.items())},
            "drivers": {d.name: {"k_without": d.k_without, "separates": d.separates} for d in self.drivers},
            "what_if": dict(self.what_if),
        }


#: ISO date prefix kept at each precision
DATE_PRECISIONS = {"day": 10, "month": 7, "year": 4}


def _coarse(row: tuple[str, ...], at: int, width: int) -> tuple[str, ...]:
    return (*row[:at], row[at][:width], *row[at + 1 :])


def _drivers(
    classes: Counter[tuple[str, ...]], names: tuple[str, ...], released: Collection[str], target: int
) -> tuple[Driver, ...]:
    found = []
    for at, name in enumerate(names):
        if name == "site_id" or name not in released:
            continue  # one value for everyone: it splits nothing
        merged: Counter[tuple[str, ...]] = Counter()
        for key, n in classes.items():
            merged[key[:at] + key[at + 1 :]] += n
        separates = sum(
            n for key, n in classes.items() if n < target and merged[key[:at] + key[at + 1 :]] >= target
        )
        found.append(Driver(name, min(merged.values()), separates))
    return tuple(sorted(found, key=lambda d: (-d.separates, -d.k_without, names.index(d.name))))


#: age bands the verdict tries on the released ages (``tables.age_band_years``)
WHAT_IF_BANDS = (5, 10)


def _what_if(classes: Counter[tuple[str, ...]], names: tuple[str, ...], at_date: int) -> dict[str, int]:
    """k of the clinical source with its ages in wider bands, and with its dates by year too."""
    if "age_years" not in names:
        return {}
    at = names.index("age_years")
    yearly = all(len(key[at_date]) <= 4 for key in classes)  # dates already counted by year
    found = {}
    for band in WHAT_IF_BANDS:
        for by_year in (False,) if yearly else (False, True):
            merged: Counter[tuple[str, ...]] = Counter()
            for key, n in classes.items():
                age = key[at]
                banded = str(int(age) - int(age) % band) if age.isdigit() else age
                cut = list(key)
                cut[at] = banded
                if by_year:
                    cut[at_date] = cut[at_date][:4]
                merged[tuple(cut)] += n
            label = f"age_band_years {band}" + (", first_exam_date_precision year" if by_year else "")
            found[label] = min(merged.values())
    return found


def _source_k(
    source: str,
    released: Collection[str],
    rows: Iterable[tuple[str, ...]],
    min_k: int,
    precision: str,
    names: tuple[str, ...] = QUASI_IDENTIFIERS,
) -> SourceK:
    width, at = DATE_PRECISIONS[precision], names.index("first_exam_date")
    classes = Counter(_coarse(row, at, width) for row in rows)
    shown = tuple(q for q in names if q in released)
    if not classes:
        return SourceK(source, shown, 0, 0, 0, 0)
    below = sum(n for n in classes.values() if n < min_k) if min_k > 0 else 0
    target = max(min_k, 2)
    small = Counter(n for n in classes.values() if n < target)
    return SourceK(
        source,
        shown,
        min(classes.values()),
        sum(classes.values()),
        len(classes),
        below,
        target,
        dict(sorted(small.items())),
        _drivers(classes, names, released, target),
        _what_if(classes, names, at) if source == CLINICAL_SOURCE else {},
    )


@dataclass(frozen=True)
class KAnonymity:
    """k of one submission, from the source that gives the smallest k, and whether the configured
    minimum blocks its release."""

    k: int
    rows: int
    classes: int
    min_k: int
    #: rows in equivalence classes smaller than ``min_k`` (0 when the check is off)
    rows_below_min_k: int
    #: the source k comes from (``clinical.csv`` or ``dicom``); empty when no source has rows
    source: str = CLINICAL_SOURCE
    #: every source with rows, in order (clinical.csv, dicom)
    sources: tuple[SourceK, ...] = ()
    #: the submission releases data, but no source carries quasi-identifiers to assess k from
    unassessed: bool = False
    #: the precision the first-exam date counted at (day, month or year)
    date_precision: str = "day"
    #: the quasi-identifiers counted (the base four and the consortium's extra ones)
    quasi_identifiers: tuple[str, ...] = QUASI_IDENTIFIERS
    #: the generalisations applied to the released tables (``features.tables.generalisations``)
    generalisations: Mapping[str, Any] = field(default_factory=dict)

    @property
    def blocked(self) -> bool:
        if self.min_k <= 0:
            return False
        return self.unassessed or (self.rows > 0 and self.k < self.min_k)

    def as_dict(self) -> dict[str, Any]:
        """What ``submission.json`` records under ``privacy`` (counts only)."""
        return {
            "quasi_identifiers": list(self.quasi_identifiers),
            "k_anonymity": self.k,
            "k_source": self.source,
            "rows": self.rows,
            "equivalence_classes": self.classes,
            "min_k_anonymity": self.min_k,
            "rows_below_min_k": self.rows_below_min_k,
            "release_blocked": self.blocked,
            "assessed": not self.unassessed,
            "date_precision": self.date_precision,
            "generalisations": dict(self.generalisations),
            "sources": {s.source: s.as_dict() for s in self.sources},
        }

    @property
    def decisive(self) -> SourceK | None:
        return next((s for s in self.sources if s.source == self.source), None)

    def verdict(self) -> list[str]:
        """What ``cohortpool deid`` prints: k, the small classes and what splits them (counts only)."""
        names = ", ".join(self.quasi_identifiers)
        if self.decisive is None:
            return [f"k-anonymity not assessed over {names}: nothing released carries them"]
        source = self.decisive
        where = "the DICOM headers" if self.source == DICOM_SOURCE else self.source
        lines = [
            f"k-anonymity {self.k} over {names} (first_exam_date by {self.date_precision}; "
            f"the smallest k is in {where})"
        ]
        if not source.small_classes:
            lines.append(f"  no class of fewer than {source.target} patients")
        else:
            sizes = ", ".join(f"{n} of size {size}" for size, n in sorted(source.small_classes.items()))
            lines.append(
                f"  {source.rows_below_target} of {source.rows} patients in classes of fewer than "
                f"{source.target} ({sizes})"
            )
            split = [
                f"{d.name} (k {d.k_without} without it; alone separates {d.separates} of them)"
                for d in source.drivers
            ]
            lines.append("  what splits them: " + ("; ".join(split) or "nothing released can be dropped"))
        lines.append("  generalisations of the tables: " + _describe(self.generalisations))
        if source.what_if and source.k < source.target:
            tried = "; ".join(f"{label}: k {k}" for label, k in source.what_if.items())
            lines.append(f"  k of {CLINICAL_SOURCE} with (tables.) {tried}")
        if self.source == DICOM_SOURCE:
            lines.append(
                "  the DICOM headers keep PatientAge, PatientSex and the shifted StudyDate as they are: "
                "the tables' generalisations do not reach them"
            )
        return lines

    def reason(self) -> str:
        if self.unassessed:
            return (
                f"k-anonymity cannot be assessed (minimum {self.min_k}): the submission releases data but "
                f"neither {CLINICAL_SOURCE} nor DICOM headers to count patients over "
                f"{', '.join(self.quasi_identifiers)}: the submission is withheld; send the clinical "
                "table or lower min_k_anonymity with the data protection officer's approval"
            )
        where = "the DICOM headers" if self.source == DICOM_SOURCE else self.source
        return (
            f"k-anonymity {self.k} is below the minimum {self.min_k} "
            f"({self.rows_below_min_k} of {self.rows} patients in smaller groups of "
            f"{', '.join(self.quasi_identifiers)} (dates by {self.date_precision}) in {where}): the "
            "submission is withheld; generalise at the site (Settings.tables: age_band_years, "
            "first_exam_date_precision, merge_rare_categories_below; see what splits the classes in "
            "`cohortpool deid`'s verdict), or lower min_k_anonymity with the data protection officer's "
            "approval"
        )


def _describe(generalisations: Mapping[str, Any]) -> str:
    done = []
    if generalisations.get("age_band_years", 1) > 1:
        done.append(f"age in {generalisations['age_band_years']}-year bands")
    if generalisations.get("age_top_code"):
        done.append(f"ages from {generalisations['age_top_code']} as {generalisations['age_top_code']}")
    if generalisations.get("first_exam_date_precision", "day") != "day":
        done.append(f"first exam date by {generalisations['first_exam_date_precision']}")
    if generalisations.get("merge_rare_categories_below"):
        below = generalisations["merge_rare_categories_below"]
        done.append(f"primary_tumour terms of fewer than {below} patients merged")
    return ", ".join(done) or (
        "none (tables.age_band_years, age_top_code, first_exam_date_precision, merge_rare_categories_below)"
    )


def clinical_quasi_identifiers(
    clinical_csv: Path, names: tuple[str, ...] = QUASI_IDENTIFIERS
) -> Iterator[tuple[str, ...]] | None:
    """One tuple of ``names`` per row of a submission's ``clinical.csv``, streamed (None: absent)."""
    if not clinical_csv.is_file():
        return None

    def rows() -> Iterator[tuple[str, ...]]:
        with clinical_csv.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                yield tuple(row.get(c, "") or "" for c in names)

    return rows()


def imaging_quasi_identifiers(
    records: Iterable[Mapping[str, Any]],
    site_id: str,
    released: Collection[str] = QUASI_IDENTIFIERS,
    names: tuple[str, ...] = QUASI_IDENTIFIERS,
) -> list[tuple[str, ...]]:
    """One tuple of :data:`QUASI_IDENTIFIERS` per patient of the de-identified DICOM.

    ``records`` are the manifest's instance records of the released files. A patient's first-exam date
    is their earliest study date; age and sex are read from that study (from a later one when it lacks
    them). Quasi-identifiers not in ``released`` (removed from the headers by the profile) and those the
    headers do not have (``names`` beyond the base four) are left empty, so they do not split the
    classes. Patients in sorted order.
    """
    best: dict[str, dict[str, tuple[tuple[str, str, str], str]]] = {}
    for record in records:
        patient = str(record.get("patient_id") or "")
        if not patient:
            continue
        date = str(record.get("study_date") or "")
        order = (date or _NO_DATE, str(record.get("study_uid") or ""), str(record.get("series_uid") or ""))
        found = best.setdefault(patient, {})
        for name, key in _RECORD_FIELDS.items():
            value = str(record.get(key) or "").strip()
            if value and (name not in found or (order, value) < found[name]):
                found[name] = (order, value)
    rows = []
    for patient in sorted(best):
        values = {name: chosen[1] for name, chosen in best[patient].items()}
        values["site_id"] = site_id
        rows.append(tuple(values.get(q, "") if q in released else "" for q in names))
    return rows


def k_anonymity(
    clinical_csv: Path,
    min_k: int = 0,
    *,
    imaging: Iterable[tuple[str, ...]] | None = None,
    imaging_released: Collection[str] = QUASI_IDENTIFIERS,
    releases_data: bool = False,
    date_precision: str = "day",
    quasi_identifiers: tuple[str, ...] = QUASI_IDENTIFIERS,
    generalisations: Mapping[str, Any] | None = None,
) -> KAnonymity:
    """k of a submission: the smaller of ``clinical.csv``'s and the DICOM headers' (module docstring).

    Parameters
    ----------
    clinical_csv
        The submission's pseudonymised clinical table (may be absent).
    min_k
        ``Settings.min_k_anonymity`` (0 = off).
    imaging
        Per-patient quasi-identifiers of the released DICOM (:func:`imaging_quasi_identifiers`).
    imaging_released
        The quasi-identifiers the DICOM headers keep (reported with the source).
    releases_data
        Whether the submission releases anything at all (files or table rows): with nothing to assess k
        from, such a submission is blocked when ``min_k`` > 0. k = 0 when no source has rows.
    date_precision
        ``day``, ``month`` or ``year``: how finely the first-exam date splits the classes.
    quasi_identifiers
        :data:`QUASI_IDENTIFIERS` and the consortium's extra clinical columns; ``imaging`` rows are
        tuples over the same names.
    generalisations
        What the tables' release generalised (recorded with the verdict).
    """
    if date_precision not in DATE_PRECISIONS:
        raise ValueError(f"date_precision {date_precision!r}: choose one of {', '.join(DATE_PRECISIONS)}")
    names, done = quasi_identifiers, dict(generalisations or {})
    sources = []
    clinical = clinical_quasi_identifiers(clinical_csv, names)
    if clinical is not None:
        sources.append(_source_k(CLINICAL_SOURCE, names, clinical, min_k, date_precision, names))
    if imaging is not None:
        sources.append(_source_k(DICOM_SOURCE, imaging_released, imaging, min_k, date_precision, names))
    counted = tuple(s for s in sources if s.rows > 0)
    if not counted:
        return KAnonymity(0, 0, 0, min_k, 0, "", (), releases_data, date_precision, names, done)
    decisive = min(counted, key=lambda s: s.k)  # the first of equals: clinical.csv before dicom
    return KAnonymity(
        decisive.k,
        decisive.rows,
        decisive.classes,
        min_k,
        decisive.rows_below_min_k,
        decisive.source,
        counted,
        date_precision=date_precision,
        quasi_identifiers=names,
        generalisations=done,
    )


def withhold(submission_dir: Path) -> Path:
    """Rename ``submission.json`` to ``release_blocked.json``: the folder is no longer a submission."""
    source = submission_dir / SUBMISSION_FILE
    target = submission_dir / BLOCKED_FILE
    source.replace(target)
    return target
