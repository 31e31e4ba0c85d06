"""The site's feature tables, column by column, with what happens to each before it leaves the site.

``clinical.csv`` and ``reads.csv`` as the hospital exports them (docs/data_contract.md section 1) and as
the submission carries them (section 2). The synthetic consortium writes the export columns from here
and the site's pseudonymisation reads the handling from here, so a column cannot be added on one side
and forgotten on the other: a column without a declared handling does not exist.
"""

from __future__ import annotations

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


class Handling(StrEnum):
    """What the site does with a column before the submission leaves."""

    #: replaced by a keyed HMAC pseudonym (the same one the images carry)
    PSEUDONYMISE = "pseudonymise"
    #: a date moved by the patient's keyed offset (never released unshifted; unparsable -> empty)
    SHIFT = "shift"
    #: a birth date turned into completed years at the first exam (released as ``age_years``)
    DERIVE_AGE = "derive age"
    #: a coded value or measurement passed on as sent; the hub's suites judge it
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

CLINICAL = SiteTable(
    name="clinical",
    columns=(
        _MRN,
        SiteColumn("patient_name", Handling.DROP, required=False, why="direct identifier"),
        SiteColumn("birth_date", Handling.DERIVE_AGE, released_as="age_years", why="full dates identify"),
        SiteColumn("sex", Handling.KEEP),
        SiteColumn("address", Handling.DROP, required=False, why="direct identifier"),
        SiteColumn("phone", Handling.DROP, required=False, why="direct identifier"),
        SiteColumn("height_cm", Handling.KEEP),
        SiteColumn("weight_kg", Handling.KEEP),
        SiteColumn("bmi", Handling.KEEP),
        SiteColumn("dxa_t_score", Handling.KEEP),
        SiteColumn("diagnosis", Handling.KEEP),
        SiteColumn("pathology_confirmed", Handling.KEEP),
        SiteColumn("primary_tumour", Handling.KEEP),
        SiteColumn("first_exam_date", Handling.SHIFT, why="full dates identify; the shift keeps intervals"),
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
        SiteColumn("modality", Handling.KEEP),
        SiteColumn("level", Handling.KEEP),
        SiteColumn("reader", Handling.DROP, required=False, why="staff name"),
        SiteColumn("read_date", Handling.DROP, required=False, why="an unshifted date"),
        *(SiteColumn(finding, Handling.KEEP) for finding in FINDINGS),
        SiteColumn("genant_grade", Handling.KEEP),
        SiteColumn("height_loss_pct", Handling.KEEP),
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

SITE_TABLES: tuple[SiteTable, ...] = (CLINICAL, READS)
