"""A submission's ``withdrawn.csv``: checked row by row and passed into the validated batch.

The site lists the patients who revoked consent (``site_id, patient_id``, data contract section 2); the
warehouse erases them on load (section 4). A withdrawal the hub cannot apply must not pass silently, so
every row that is not exactly the submission's site and a pseudonym is quarantined with its reason (the
site sends it again), and a file that cannot be read at all puts one line in quarantine for the whole
file. What passes is written as the validated batch's ``withdrawn.csv``, each pseudonym once, in the
site's order. A submission without the file gets none (the batch's checksum stays as before).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cohortpool.contract.csvio import write_csv
from cohortpool.contract.files import sha256_file
from cohortpool.validate.findings import ERROR
from cohortpool.validate.quarantine import QUARANTINE_COLUMNS

#: the file in a submission and in a validated batch
FILE = "withdrawn.csv"
#: its columns, in this order
COLUMNS: tuple[str, ...] = ("site_id", "patient_id")
#: the table name of its quarantine lines
TABLE = "withdrawn"
#: the expectation its quarantine lines name
EXPECTATION = "withdrawal_row_valid"
#: a patient pseudonym as the site writes it (the clinical suite's rule)
_PSEUDONYM = re.compile(r"^P[0-9A-F]{16}$")


@dataclass
class Withdrawals:
    """What validation made of a submission's ``withdrawn.csv``."""

    source_sha256: str
    rows_in: int = 0
    #: the pseudonyms that passed, each once, in the site's order
    accepted: list[str] = field(default_factory=list)
    #: rows naming a pseudonym an earlier row passed (rows_in = accepted + duplicates + quarantined)
    duplicates: int = 0
    quarantine: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=QUARANTINE_COLUMNS))

    def summary(self) -> dict[str, object]:
        """``summary.json`` ``withdrawn``: the file, its checksum and the counts."""
        return {
            "file": FILE,
            "source_sha256": self.source_sha256,
            "rows_in": self.rows_in,
            "accepted": len(self.accepted),
            "duplicates": self.duplicates,
            "quarantined": len(self.quarantine),
        }


def _line(row: int | None, key: str, reason: str) -> dict[str, object]:
    return {
        "table": TABLE,
        "source_row": row,
        "key": key,
        "expectation": EXPECTATION,
        "severity": ERROR,
        "reason": reason,
        "value": "",
    }


def _problem(site_id: str, row: dict[str | None, object]) -> str | None:
    if None in row or any(v is None for v in row.values()):
        return f"the row does not have exactly the columns {', '.join(COLUMNS)}"
    if row["site_id"] != site_id:
        return f"site_id is not the submission's site {site_id}: a site withdraws only its own patients"
    if not _PSEUDONYM.match(str(row["patient_id"])):
        return "patient_id must be a pseudonym P + 16 upper-case hex digits"
    return None


def check_withdrawals(submission_dir: Path, site_id: str) -> Withdrawals | None:
    """Check ``withdrawn.csv`` of a submission; None when it has none."""
    path = Path(submission_dir) / FILE
    if not path.is_file():
        return None
    result = Withdrawals(sha256_file(path))
    lines: list[dict[str, object]] = []
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            header = tuple(reader.fieldnames or ())
            if header != COLUMNS:
                raise ValueError(f"the header is {list(header)}, expected {list(COLUMNS)}")
            seen: set[str] = set()
            for number, row in enumerate(reader, start=1):
                result.rows_in += 1
                problem = _problem(site_id, row)
                if problem is not None:
                    # the key repeats the pseudonym only when it is one (never text the site typed)
                    key = str(row.get("patient_id") or "")
                    lines.append(_line(number, key if _PSEUDONYM.match(key) else "", problem))
                elif row["patient_id"] in seen:
                    result.duplicates += 1
                else:
                    seen.add(str(row["patient_id"]))
                    result.accepted.append(str(row["patient_id"]))
    except (UnicodeDecodeError, csv.Error, ValueError) as exc:
        # whose consent was revoked cannot be told: nothing of the file is applied, the site resends it
        reason = f"{FILE} could not be read ({exc}); no withdrawal of this submission was applied"
        result.accepted, result.duplicates = [], 0
        lines = [_line(None, "", reason)]
    result.quarantine = pd.DataFrame(lines, columns=QUARANTINE_COLUMNS)
    if len(result.quarantine):
        result.quarantine["source_row"] = result.quarantine["source_row"].astype("Int64")
    return result


def write_withdrawals(withdrawals: Withdrawals, site_id: str, out_dir: Path) -> None:
    """The validated batch's ``withdrawn.csv``: the pseudonyms that passed."""
    write_csv(out_dir / FILE, COLUMNS, ({"site_id": site_id, "patient_id": p} for p in withdrawals.accepted))
