"""The site's feature tables, column by column, with what happens to each before it leaves the site.

``clinical.csv``, ``reads.csv`` and ``withdrawn.csv`` as the hospital exports them (docs/data_contract.md
section 1) and as the submission carries them (section 2). The synthetic consortium writes the export
columns from here and the site's pseudonymisation reads the handling from here, so a column cannot be
added on one side and forgotten on the other: a column without a declared handling does not exist.

No free text leaves a site. Every released cell is a keyed pseudonym, a shifted date, a derived age, a
term of a controlled vocabulary, or a kept value that passed its column's check here: one of the
column's codes (``sex`` M/F, a vertebral level, yes/no, ...) or a short decimal number. A kept value that
fails its check is released as :data:`INVALID` (the original stays in the site's vault), so the hub
still quarantines the row while nothing it writes (warnings, quarantine lists, Data Docs, logs) can
repeat what a site typed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

#: the paper's Table 2 and 3 findings, one yes/no column each in reads.csv, in contract order
FINDINGS: tuple[str, ...] = (
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
)
#: modalities of a read: XR is a plain radiograph (DICOM DX or CR)
READ_MODALITIES: tuple[str, ...] = ("XR", "CT", "MR")


#: what a kept value outside its column's value set or number format is released as (the hub's suites
#: reject it like any invalid code; the site's vault keeps the original, its row and its column)
INVALID = "<invalid>"
#: a measurement as a site may send it: at most 3 digits before and 3 after the decimal point (every
#: measurement of the contract fits; an MRN, phone number or date typed into the cell does not)
NUMBER = re.compile(r"-?(?:[0-9]{1,3}(?:[.][0-9]{0,3})?|[.][0-9]{1,3})")


class Handling(StrEnum):
    """What the site does with a column before the submission leaves.

    Generalisation for k-anonymity (``Settings.tables``) applies on top of three of them: a derived
    age in bands, a shifted date to the month or year, rare vocabulary terms merged into "other"
    (:attr:`SiteColumn.generalised_by` names the setting).
    """

    #: replaced by a keyed HMAC pseudonym (the same one the images carry)
    PSEUDONYMISE = "pseudonymise"
    #: a date moved by the patient's keyed offset (never released unshifted; unparsable -> empty)
    SHIFT = "shift"
    #: a birth date turned into completed years at the first exam (released as ``age_years``)
    DERIVE_AGE = "derive age"
    #: free text mapped to a controlled vocabulary (synonyms and case folded); any other value becomes
    #: the vocabulary's "other" term, the original stays in the vault
    VOCABULARY = "controlled vocabulary"
    #: a code or measurement passed on when it is one of the column's values or a short number, else
    #: released as :data:`INVALID` (the hub's suites judge the rest: ranges, cross-column rules)
    KEEP = "keep"
    #: never leaves the site (names, addresses, phone numbers, staff, read dates)
    DROP = "drop"


@dataclass(frozen=True)
class SiteColumn:
    """One column of a site's export."""

    name: str
    handling: Handling
    #: the export must have it (a dropped column may be absent)
    required: bool = True
    #: its name in the submission when that differs (``mrn`` -> ``patient_id``)
    released_as: str | None = None
    #: why it is handled so (shown in the data contract and the deid summary)
    why: str = ""
    #: KEEP: the codes the column may hold (the suites' value set); empty for a number or other handling
    values: tuple[str, ...] = ()
    #: KEEP: a measurement in :data:`NUMBER` form
    numeric: bool = False
    #: the ``Settings.tables`` field that generalises the released value, if any
    generalised_by: str = ""

    def __post_init__(self) -> None:
        if self.handling is Handling.KEEP and not (self.values or self.numeric):
            raise ValueError(f"kept column {self.name} needs a value set or a number format")

    def admits(self, value: str) -> bool:
        """Whether a (stripped, non-empty) value of a KEEP column may leave as sent."""
        if self.values:
            return value in self.values
        if self.numeric:
            return NUMBER.fullmatch(value) is not None
        return True

    @property
    def expected(self) -> str:
        """What a valid value looks like, in the site's terms (for messages)."""
        if self.values:
            return "one of " + ", ".join(self.values)
        if self.numeric:
            return "a number with at most 3 digits before and 3 after the decimal point (e.g. 23.45)"
        return str(self.handling)


@dataclass(frozen=True)
class SiteTable:
    """A site table: its export columns in export order and its released columns in submission order."""

    name: str
    columns: tuple[SiteColumn, ...]
    released: tuple[str, ...]

    @property
    def file(self) -> str:
        return f"{self.name}.csv"

    @property
    def export_columns(self) -> tuple[str, ...]:
        """Every column a hospital's export holds, in order (what the synthetic sites write)."""
        return tuple(c.name for c in self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        """The columns the site's pseudonymisation cannot do without."""
        return tuple(c.name for c in self.columns if c.required)

    def column(self, name: str) -> SiteColumn:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.name}.csv has no column {name!r} in the data contract")


_MRN = SiteColumn("mrn", Handling.PSEUDONYMISE, released_as="patient_id", why="the hospital's patient id")
_YES_NO = ("yes", "no")
#: vertebral levels of the contract (thoracic and lumbar)
LEVELS: tuple[str, ...] = (*(f"T{i}" for i in range(1, 13)), *(f"L{i}" for i in range(1, 6)))


def _number(name: str) -> SiteColumn:
    return SiteColumn(name, Handling.KEEP, numeric=True, why="a measurement")


def _coded(name: str, values: tuple[str, ...]) -> SiteColumn:
    return SiteColumn(name, Handling.KEEP, values=values, why="a code of the contract")


CLINICAL = SiteTable(
    name="clinical",
    columns=(
        _MRN,
        SiteColumn("patient_name", Handling.DROP, required=False, why="direct identifier"),
        SiteColumn(
            "birth_date",
            Handling.DERIVE_AGE,
            released_as="age_years",
            why="full dates identify",
            generalised_by="age_band_years, age_top_code",
        ),
        _coded("sex", ("M", "F")),
        SiteColumn("address", Handling.DROP, required=False, why="direct identifier"),
        SiteColumn("phone", Handling.DROP, required=False, why="direct identifier"),
        _number("height_cm"),
        _number("weight_kg"),
        _number("bmi"),
        _number("dxa_t_score"),
        _coded("diagnosis", ("OP", "MET")),
        _coded("pathology_confirmed", _YES_NO),
        SiteColumn(
            "primary_tumour",
            Handling.VOCABULARY,
            why="typed free text (a hospital once typed the MRN, name and phone number into it)",
            generalised_by="merge_rare_categories_below",
        ),
        SiteColumn(
            "first_exam_date",
            Handling.SHIFT,
            why="full dates identify; the shift keeps intervals",
            generalised_by="first_exam_date_precision",
        ),
    ),
    released=(
        "site_id",
        "patient_id",
        "age_years",
        "sex",
        "height_cm",
        "weight_kg",
        "bmi",
        "dxa_t_score",
        "diagnosis",
        "pathology_confirmed",
        "primary_tumour",
        "first_exam_date",
        "source_row",
    ),
)

READS = SiteTable(
    name="reads",
    columns=(
        _MRN,
        SiteColumn(
            "accession_number",
            Handling.PSEUDONYMISE,
            released_as="accession_id",
            why="links the read to its study",
        ),
        _coded("modality", READ_MODALITIES),
        _coded("level", LEVELS),
        SiteColumn("reader", Handling.DROP, required=False, why="staff name"),
        SiteColumn("read_date", Handling.DROP, required=False, why="an unshifted date"),
        *(_coded(finding, _YES_NO) for finding in FINDINGS),
        _coded("genant_grade", ("0", "1", "2", "3")),
        _number("height_loss_pct"),
    ),
    released=(
        "site_id",
        "patient_id",
        "accession_id",
        "modality",
        "level",
        *FINDINGS,
        "genant_grade",
        "height_loss_pct",
        "source_row",
    ),
)

#: patients who revoked consent: their rows are not released, and the hub erases what it holds of them
WITHDRAWN = SiteTable(
    name="withdrawn",
    columns=(_MRN,),
    released=("site_id", "patient_id"),
)

SITE_TABLES: tuple[SiteTable, ...] = (CLINICAL, READS)
#: every table file a site drop may hold at its top level (the rest of the drop is DICOM)
DROP_TABLE_FILES: tuple[str, ...] = tuple(t.file for t in (*SITE_TABLES, WITHDRAWN))
