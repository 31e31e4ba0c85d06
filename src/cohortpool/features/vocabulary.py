"""A controlled vocabulary for a free-text column (``primary_tumour``): what a site typed -> one term.

A site's export may hold anything in a text cell, including identifiers typed by hand. Nothing typed
leaves: a value is normalised (Unicode NFKC, case folded, runs of blanks, ``_`` and ``-`` made one
space) and looked up among the reviewed synonyms (``data/primary_tumour_synonyms.csv``, or the
consortium's own file) and the configured terms; anything else becomes the vocabulary's "other" term.
Exact lookups only: a value that merely contains a term (``lung; pt 1234 ...``) is not that term.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from cohortpool.config import TablesConfig

SHIPPED_SYNONYMS = "primary_tumour_synonyms.csv"
_BLANKS = re.compile(r"[\s_\-]+")

#: how a value reached its released term
EXACT, SYNONYM, OTHER, EMPTY = "exact", "synonym", "other", "empty"


class VocabularyError(ValueError):
    """The synonyms file cannot be used (names the file, the line and what to fix)."""


def normalise(text: str) -> str:
    """The form values and synonyms are compared in."""
    return _BLANKS.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


@dataclass(frozen=True)
class Vocabulary:
    """The released terms of one column, the term anything else becomes, and the synonyms."""

    terms: tuple[str, ...]
    other: str
    #: normalised synonym or term -> released term (only terms of ``terms``)
    lookup: dict[str, str] = field(default_factory=dict)
    source: str = ""

    def release(self, value: str | None) -> tuple[str, str]:
        """``(released term, how)``: how is :data:`EXACT`, :data:`SYNONYM`, :data:`OTHER` or
        :data:`EMPTY` (an empty cell stays empty: the hub judges whether one was required)."""
        text = (value or "").strip()
        if not text:
            return "", EMPTY
        if text in self.terms:
            return text, EXACT
        term = self.lookup.get(normalise(text))
        if term is None:
            return self.other, OTHER
        return term, SYNONYM


def _synonym_rows(path: Path | None) -> tuple[str, list[tuple[int, str, str]]]:
    if path is None:
        handle = resources.files("cohortpool.features").joinpath("data", SHIPPED_SYNONYMS)
        name, text = f"cohortpool/features/data/{SHIPPED_SYNONYMS}", handle.read_text(encoding="utf-8")
    else:
        try:
            name, text = str(path), path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise VocabularyError(
                f"{path}: cannot read the primary_tumour synonyms ({exc}); fix "
                "tables.primary_tumour_synonyms or the file (UTF-8 CSV: synonym,term)"
            ) from None
    rows: list[tuple[int, str, str]] = []
    header_seen = False
    for number, cells in enumerate(csv.reader(text.splitlines()), start=1):
        if not cells or cells[0].startswith("#"):
            continue
        if not header_seen:
            if [c.strip() for c in cells] != ["synonym", "term"]:
                raise VocabularyError(f"{name}: line {number}: the header must be 'synonym,term'")
            header_seen = True
            continue
        if len(cells) != 2 or not cells[0].strip() or not cells[1].strip():
            raise VocabularyError(f"{name}: line {number}: write one 'synonym,term' pair per line")
        rows.append((number, cells[0], cells[1].strip()))
    return name, rows


def load_vocabulary(options: TablesConfig) -> Vocabulary:
    """The consortium's ``primary_tumour`` vocabulary with its synonyms.

    Raises
    ------
    VocabularyError
        The synonyms file is unreadable, or maps one synonym to two terms.
    """
    terms = options.primary_tumour_vocabulary
    name, rows = _synonym_rows(options.primary_tumour_synonyms)
    lookup = {normalise(term): term for term in terms}
    seen: dict[str, tuple[int, str]] = {}
    for number, synonym, term in rows:
        key = normalise(synonym)
        if key in seen and seen[key][1] != term:
            raise VocabularyError(
                f"{name}: line {number}: the synonym on this line already means {seen[key][1]!r} "
                f"(line {seen[key][0]}); keep one meaning"
            )
        seen[key] = (number, term)
        if key in lookup and lookup[key] in terms and key == normalise(lookup[key]):
            continue  # a term of the vocabulary is itself, whatever a synonym list says
        # a synonym of a term the consortium does not use stays unmapped: it is released as "other"
        if term in terms:
            lookup[key] = term
    return Vocabulary(terms, options.primary_tumour_other, lookup, name)
