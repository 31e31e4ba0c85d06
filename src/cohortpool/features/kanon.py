"""Re-identification risk of what leaves a site: k-anonymity of the clinical table's quasi-identifiers.

A submission's ``clinical.csv`` has one row per patient. Its quasi-identifiers (age at first exam, sex,
site and the shifted first-exam date) are what an outsider could link to another source (Sweeney 2002,
"k-anonymity: a model for protecting privacy"): the rows sharing one combination form an equivalence
class, and ``k`` is the size of the smallest class (k = 1: some patient is unique on them). The date is
shifted by up to a year, which blurs it but does not make it less unique, so it counts as it is.

With ``Settings.min_k_anonymity`` > 0 a submission below that k is withheld: its manifest is written as
``release_blocked.json`` instead of ``submission.json``, so no hub step takes the folder for a submission.
Computing k is a group-by count; a library (e.g. ARX, sdcMicro) would add generalisation search we do
not use.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

QUASI_IDENTIFIERS = ("age_years", "sex", "site_id", "first_exam_date")
SUBMISSION_FILE = "submission.json"
BLOCKED_FILE = "release_blocked.json"


class ReleaseBlockedError(RuntimeError):
    """The submission's k-anonymity is below the configured minimum: it is withheld at the site."""


@dataclass(frozen=True)
class KAnonymity:
    """k of one submission's clinical table, and whether the configured minimum blocks its release."""

    k: int
    rows: int
    classes: int
    min_k: int
    #: rows in equivalence classes smaller than ``min_k`` (0 when the check is off)
    rows_below_min_k: int

    @property
    def blocked(self) -> bool:
        return self.min_k > 0 and self.rows > 0 and self.k < self.min_k

    def as_dict(self) -> dict[str, Any]:
        """What ``submission.json`` records under ``privacy`` (counts only)."""
        return {
            "quasi_identifiers": list(QUASI_IDENTIFIERS),
            "k_anonymity": self.k,
            "rows": self.rows,
            "equivalence_classes": self.classes,
            "min_k_anonymity": self.min_k,
            "rows_below_min_k": self.rows_below_min_k,
            "release_blocked": self.blocked,
        }

    def reason(self) -> str:
        return (
            f"k-anonymity {self.k} is below the minimum {self.min_k} "
            f"({self.rows_below_min_k} of {self.rows} patients in smaller groups of "
            f"{', '.join(QUASI_IDENTIFIERS)}): the submission is withheld; generalise or aggregate at the "
            "site, or lower min_k_anonymity with the data protection officer's approval"
        )


def k_anonymity(clinical_csv: Path, min_k: int = 0) -> KAnonymity:
    """k of the quasi-identifiers in a submission's ``clinical.csv`` (k = 0 for an empty or absent table)."""
    if not clinical_csv.is_file():
        return KAnonymity(0, 0, 0, min_k, 0)
    with clinical_csv.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        classes = Counter(tuple(row.get(c, "") for c in QUASI_IDENTIFIERS) for row in reader)
    if not classes:
        return KAnonymity(0, 0, 0, min_k, 0)
    below = sum(n for n in classes.values() if n < min_k) if min_k > 0 else 0
    return KAnonymity(min(classes.values()), sum(classes.values()), len(classes), min_k, below)


def withhold(submission_dir: Path) -> Path:
    """Rename ``submission.json`` to ``release_blocked.json``: the folder is no longer a submission."""
    source = submission_dir / SUBMISSION_FILE
    target = submission_dir / BLOCKED_FILE
    source.replace(target)
    return target
