"""The DICOM PS3.15 Annex E confidentiality profile as data: Table E.1-1 plus the chosen options.

The table ships as ``data/ps315_annex_e_2026c.csv``: the 2024b transcription of ``shared/reference``
unchanged plus the rows edition 2026c adds (its ``#`` lines give the provenance of both parts).
Bringing it to a newer edition means replacing that file, :data:`EDITION` and
:data:`TABLE_SHA256`, never editing other Python. Each row gives the Basic Profile action and, per
option, the action that option substitutes (an empty cell: the option leaves the Basic action alone).

Resolution when several chosen options name the same attribute: the most retaining action wins
(``K`` over ``C`` over anything else), because each option exists to retain something the Basic
Profile would remove, and PS3.15 E.3 describes the options as additive.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import TextIO

#: the edition of PS3.15 the shipped table transcribes
EDITION = "DICOM PS3.15 2026c"
TABLE_FILE = "ps315_annex_e_2026c.csv"
#: sha256 of the shipped table's bytes (provenance lines included): an edit to the table must
#: change this too, deliberately (tests/unit/test_deid_profile.py checks it)
TABLE_SHA256 = "1cc3740054e9e336113a4ebe4000eaeb6a2630b59d9fe35846d8f6360448f0ac"
SAFE_PRIVATE_FILE = "ps315_safe_private_2023b.csv"
#: our few departures from the table's action, each for IOD conformance, with its reason
OVERRIDES_FILE = "conformance_overrides.csv"
VOCABULARY_FILE = "descriptor_vocabulary.txt"
#: the reviewed allow-list of attributes Table E.1-1 does not name that may keep a text value
RETENTION_FILE = "retention_list.csv"
#: what a retention-list row does: keep the value, empty it (Type 2) or give a dummy (Type 1)
RETENTION_ACTIONS = ("K", "Z", "D")

#: option column of Table E.1-1 -> (CID 7050 code value, code meaning); PS3.16 CID 7050
#: "De-identification Method" (the Basic Profile itself is 113100).
OPTION_CODES: dict[str, tuple[str, str]] = {
    "basic_profile": ("113100", "Basic Application Confidentiality Profile"),
    "clean_graphics": ("113103", "Clean Graphics Option"),
    "clean_structured_content": ("113104", "Clean Structured Content Option"),
    "clean_descriptors": ("113105", "Clean Descriptors Option"),
    "retain_long_full_dates": ("113106", "Retain Longitudinal Temporal Information Full Dates Option"),
    "retain_long_modified_dates": (
        "113107",
        "Retain Longitudinal Temporal Information Modified Dates Option",
    ),
    "retain_patient_characteristics": ("113108", "Retain Patient Characteristics Option"),
    "retain_device_identity": ("113109", "Retain Device Identity Option"),
    "retain_uids": ("113110", "Retain UIDs Option"),
    "retain_safe_private": ("113111", "Retain Safe Private Option"),
    "retain_institution_identity": ("113112", "Retain Institution Identity Option"),
}
OPTIONS = tuple(k for k in OPTION_CODES if k != "basic_profile")
_ACTION_RANK = {"K": 2, "C": 1}
_TAG = re.compile(r"^\(([0-9A-Fx]{4}),([0-9A-Fx]{4})\)")
_VALID_ACTIONS = {"X", "Z", "D", "K", "C", "U", "X/Z", "X/D", "X/Z/D", "Z/D", "X/Z/U*"}


@dataclass(frozen=True)
class Rule:
    """One attribute's resolved action: ``action`` under the options, ``basic`` without them."""

    tag: str
    keyword: str
    action: str
    basic: str


@dataclass(frozen=True)
class Retained:
    """A retention-list row: the VR the attribute must have and what happens to its value."""

    keyword: str
    vr: str
    action: str


@dataclass(frozen=True)
class Profile:
    """A resolved profile: exact tags, masked (repeating-group) tags and the private rule."""

    edition: str
    options: tuple[str, ...]
    exact: dict[int, Rule]
    #: (mask, value, rule): ``tag & mask == value`` (curves 50xx, overlays 60xx)
    masked: tuple[tuple[int, int, Rule], ...]
    private: Rule
    #: (group, element low byte, creator) of safe private attributes (Table E.3.10-1)
    safe_private: frozenset[tuple[int, int, str]] = field(default_factory=frozenset)
    vocabulary: frozenset[str] = field(default_factory=frozenset)
    #: tag -> retention-list row (attributes the table does not name that keep a text value)
    retained: dict[int, Retained] = field(default_factory=dict)

    def rule(self, tag: int) -> Rule | None:
        """The rule for a standard (even-group) tag, or ``None`` when the table does not name it."""
        found = self.exact.get(tag)
        if found is not None:
            return found
        for mask, value, rule in self.masked:
            if tag & mask == value:
                return rule
        return None

    @property
    def code_values(self) -> list[tuple[str, str]]:
        """CID 7050 codes of the Basic Profile and each chosen option, in table order."""
        chosen = ["basic_profile", *[o for o in OPTION_CODES if o in self.options]]
        return [OPTION_CODES[o] for o in chosen]


def _resolve(row: dict[str, str], options: Iterable[str]) -> str:
    choices = [row[o].strip() for o in options if row.get(o, "").strip()]
    if not choices:
        return row["basic_profile"].strip()
    return max(choices, key=lambda a: _ACTION_RANK.get(a, 0))


def _mask(text: str) -> tuple[int, int]:
    mask = int("".join("0" if c == "x" else "F" for c in text), 16)
    value = int(text.replace("x", "0"), 16)
    return mask, value


def read_table(
    stream: TextIO, options: Iterable[str]
) -> tuple[dict[int, Rule], list[tuple[int, int, Rule]], Rule]:
    """Parse Table E.1-1 (provenance line first) into exact rules, masked rules and the private rule."""
    opts = list(options)
    lines = (line for line in stream if not line.startswith("#"))
    exact: dict[int, Rule] = {}
    masked: list[tuple[int, int, Rule]] = []
    private: Rule | None = None
    for number, row in enumerate(csv.DictReader(lines), start=2):
        basic = row["basic_profile"].strip()
        action = _resolve(row, opts)
        for code in (basic, action):
            if code not in _VALID_ACTIONS:
                raise ValueError(f"{TABLE_FILE} row {number} ({row['tag']}): unknown action {code!r}")
        rule = Rule(tag=row["tag"].split(" ")[0], keyword=row["keyword"], action=action, basic=basic)
        if row["tag"].startswith("(gggg,eeee)"):
            private = rule
            continue
        match = _TAG.match(row["tag"])
        if match is None:
            raise ValueError(f"{TABLE_FILE} row {number}: unreadable tag {row['tag']!r}")
        text = match[1] + match[2]
        if "x" in text:
            mask, value = _mask(text)
            masked.append((mask, value, rule))
        else:
            exact[int(text, 16)] = rule
    if private is None:
        raise ValueError(f"{TABLE_FILE}: no row for private attributes (gggg,eeee)")
    return exact, masked, private


def apply_overrides(stream: TextIO, exact: dict[int, Rule]) -> dict[int, Rule]:
    """Replace the action of each overridden attribute whose resolved action is the table's one."""
    lines = (line for line in stream if not line.startswith("#"))
    for number, row in enumerate(csv.DictReader(lines), start=2):
        match = _TAG.match(row["tag"])
        if match is None or row["action"] not in _VALID_ACTIONS:
            raise ValueError(f"{OVERRIDES_FILE} row {number}: unreadable tag or action in {row}")
        tag = int(match[1] + match[2], 16)
        rule = exact.get(tag)
        if rule is None:
            raise ValueError(f"{OVERRIDES_FILE} row {number}: {row['tag']} is not in {TABLE_FILE}")
        if rule.action == row["table_action"]:
            basic = row["action"] if rule.basic == row["table_action"] else rule.basic
            exact[tag] = Rule(tag=rule.tag, keyword=rule.keyword, action=row["action"], basic=basic)
    return exact


def read_safe_private(stream: TextIO) -> frozenset[tuple[int, int, str]]:
    """Parse Table E.3.10-1 rows ``(gggg,xxee)``, private creator -> (group, ee, creator)."""
    lines = (line for line in stream if not line.startswith("#"))
    safe: set[tuple[int, int, str]] = set()
    for row in csv.DictReader(lines):
        match = _TAG.match(row["Data Element"])
        if match is None:
            continue
        safe.add((int(match[1], 16), int(match[2][2:], 16), row["Private Creator"].strip()))
    return frozenset(safe)


def read_vocabulary(stream: TextIO) -> frozenset[str]:
    """Words allowed in cleaned descriptors (one a line, ``#`` comments), upper-cased."""
    words = set()
    for line in stream:
        text = line.split("#", 1)[0].strip().upper()
        if text:
            words.update(text.split())
    return frozenset(words)


def read_retention(stream: TextIO, exact: dict[int, Rule]) -> dict[int, Retained]:
    """Parse the retention list: keyword, tag, VR, action (K/Z/D), reason, needed_by.

    Raises
    ------
    ValueError
        A row with an unreadable tag, an unknown action, no reason, or a tag Table E.1-1 names
        (the table decides those; the list is only for what it does not name).
    """
    lines = (line for line in stream if not line.startswith("#"))
    retained: dict[int, Retained] = {}
    for number, row in enumerate(csv.DictReader(lines), start=2):
        match = _TAG.match(row["tag"])
        where = f"{RETENTION_FILE} row {number} ({row.get('keyword')})"
        if match is None or "x" in row["tag"]:
            raise ValueError(f"{where}: unreadable tag {row['tag']!r}")
        if row["action"] not in RETENTION_ACTIONS:
            raise ValueError(f"{where}: action {row['action']!r} is not one of {RETENTION_ACTIONS}")
        if not row["reason"].strip() or not row["needed_by"].strip():
            raise ValueError(f"{where}: every row needs a reason and what needs it")
        tag = int(match[1] + match[2], 16)
        if tag in exact:
            raise ValueError(f"{where}: {row['tag']} is in {TABLE_FILE}, whose action applies")
        if tag in retained:
            raise ValueError(f"{where}: {row['tag']} is listed twice")
        retained[tag] = Retained(keyword=row["keyword"], vr=row["vr"], action=row["action"])
    return retained


def _data(name: str) -> TextIO:
    stream = resources.files("cohortpool.deid").joinpath("data", name).open(encoding="utf-8")
    return stream  # type: ignore[return-value]  # a text-mode open is a TextIO


@lru_cache(maxsize=8)
def load_profile(options: tuple[str, ...]) -> Profile:
    """The shipped table resolved under ``options`` (names of Table E.1-1 option columns).

    Raises
    ------
    ValueError
        For an unknown option, naming the valid ones.
    """
    unknown = [o for o in options if o not in OPTIONS]
    if unknown:
        raise ValueError(f"unknown de-identification option(s) {unknown}; valid: {', '.join(OPTIONS)}")
    if "retain_long_full_dates" in options and "retain_long_modified_dates" in options:
        raise ValueError("choose one of retain_long_full_dates and retain_long_modified_dates, not both")
    ordered = tuple(o for o in OPTIONS if o in options)
    with _data(TABLE_FILE) as stream:
        exact, masked, private = read_table(stream, ordered)
    with _data(OVERRIDES_FILE) as stream:
        exact = apply_overrides(stream, exact)
    with _data(SAFE_PRIVATE_FILE) as stream:
        safe = read_safe_private(stream)
    with _data(VOCABULARY_FILE) as stream:
        vocabulary = read_vocabulary(stream)
    with _data(RETENTION_FILE) as stream:
        retained = read_retention(stream, exact)
    return Profile(
        edition=EDITION,
        options=ordered,
        exact=exact,
        masked=tuple(masked),
        private=private,
        safe_private=safe,
        vocabulary=vocabulary,
        retained=retained,
    )
