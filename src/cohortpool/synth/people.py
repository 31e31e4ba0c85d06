"""Invented people: patient and staff names, addresses and phone numbers.

Site 1 is a Chinese hospital, so its names are Chinese characters with their pinyin (a DICOM PN value
carries both: ``Wang^Xiaoming=王^小明``); the other sites use English names. Every name is drawn from short
lists of common surnames and given names, so none describes a real person.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np

T = TypeVar("T")

# (character, pinyin) pairs: common surnames and given-name characters
_ZH_FAMILY: tuple[tuple[str, str], ...] = (
    ("王", "Wang"), ("李", "Li"), ("张", "Zhang"), ("刘", "Liu"), ("陈", "Chen"), ("杨", "Yang"),
    ("赵", "Zhao"), ("黄", "Huang"), ("周", "Zhou"), ("吴", "Wu"), ("徐", "Xu"), ("孙", "Sun"),
    ("胡", "Hu"), ("朱", "Zhu"), ("高", "Gao"), ("林", "Lin"), ("何", "He"), ("郭", "Guo"),
    ("马", "Ma"), ("罗", "Luo"),
)  # fmt: skip
_ZH_GIVEN_M: tuple[tuple[str, str], ...] = (
    ("伟", "wei"), ("强", "qiang"), ("磊", "lei"), ("军", "jun"), ("勇", "yong"), ("杰", "jie"),
    ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("刚", "gang"), ("平", "ping"), ("辉", "hui"),
    ("建", "jian"), ("国", "guo"), ("华", "hua"), ("文", "wen"),
)  # fmt: skip
_ZH_GIVEN_F: tuple[tuple[str, str], ...] = (
    ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"), ("艳", "yan"),
    ("娟", "juan"), ("霞", "xia"), ("玲", "ling"), ("秀", "xiu"), ("英", "ying"), ("兰", "lan"),
    ("梅", "mei"), ("红", "hong"), ("桂", "gui"), ("萍", "ping"),
)  # fmt: skip
_ZH_STREETS = ("建设路", "人民路", "解放路", "中山路", "和平街", "胜利大街", "新华路", "光明路")

_EN_FAMILY = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson", "Taylor",
    "Thomas", "Moore", "Martin", "Jackson", "Thompson", "White", "Harris", "Clark", "Lewis", "Walker",
    "Hall", "Allen", "Young", "King", "Wright", "Scott", "Green", "Baker", "Adams", "Nelson",
)  # fmt: skip
_EN_GIVEN_M = (
    "James", "John", "Robert", "Michael", "William", "David", "Richard", "Joseph", "Charles", "Thomas",
    "George", "Edward", "Frank", "Peter", "Henry", "Arthur",
)  # fmt: skip
_EN_GIVEN_F = (
    "Mary", "Patricia", "Linda", "Barbara", "Elizabeth", "Susan", "Margaret", "Dorothy", "Helen", "Ruth",
    "Sandra", "Carol", "Joan", "Nancy", "Alice", "Judith",
)  # fmt: skip
_EN_STREETS = ("Elm Street", "Oak Avenue", "Maple Drive", "Church Lane", "Mill Road", "Park Terrace")


@dataclass(frozen=True)
class Name:
    """One person's name in the forms a hospital writes it."""

    display: str  # as the hospital's tables write it: 王小明 / John Smith
    pn: str  # DICOM PN: Wang^Xiaoming=王^小明 / Smith^John
    ascii_upper: str  # as a PACS export names folders: WANG_XIAOMING / SMITH_JOHN

    @property
    def words(self) -> list[str]:
        """The ASCII words of the name (what a burned-in label shows)."""
        return self.ascii_upper.split("_")


def _pick(rng: np.random.Generator, items: tuple[T, ...]) -> T:
    return items[int(rng.integers(len(items)))]


def person_name(rng: np.random.Generator, style: str, sex: str) -> Name:
    """A name in the site's style; ``sex`` is ``M`` or ``F``."""
    if style == "zh":
        fam_zh, fam_py = _pick(rng, _ZH_FAMILY)
        given = _ZH_GIVEN_M if sex == "M" else _ZH_GIVEN_F
        n_chars = 1 + int(rng.random() < 0.6)
        chars = [_pick(rng, given) for _ in range(n_chars)]
        given_zh = "".join(c for c, _ in chars)
        given_py = "".join(p for _, p in chars).capitalize()
        return Name(
            display=f"{fam_zh}{given_zh}",
            pn=f"{fam_py}^{given_py}={fam_zh}^{given_zh}",
            ascii_upper=f"{fam_py}_{given_py}".upper(),
        )
    family = _pick(rng, _EN_FAMILY)
    given_en = _pick(rng, _EN_GIVEN_M if sex == "M" else _EN_GIVEN_F)
    return Name(
        display=f"{given_en} {family}", pn=f"{family}^{given_en}", ascii_upper=f"{family}_{given_en}".upper()
    )


def staff_name(rng: np.random.Generator, style: str) -> Name:
    """A physician, technologist or radiologist of the site."""
    return person_name(rng, style, "M" if rng.random() < 0.5 else "F")


def address(rng: np.random.Generator, style: str, town: str) -> str:
    """A street address in the site's town."""
    number = int(rng.integers(1, 300))
    if style == "zh":
        return f"{town}{_pick(rng, _ZH_STREETS)}{number}号"
    return f"{number} {_pick(rng, _EN_STREETS)}, {town}"


def phone(rng: np.random.Generator, style: str) -> str:
    """A phone number in the site's national format (fictional ranges)."""
    digits = "".join(str(int(d)) for d in rng.integers(0, 10, size=8))
    if style == "zh":
        return f"13{int(rng.integers(0, 10))}{digits}"
    return f"+1 555 01{digits[:2]} {digits[2:6]}"
