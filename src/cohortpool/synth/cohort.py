"""A site's patients: demographics, studies, fractured vertebrae and their reads.

Site 1 is calibrated to Table 1 of ``vcf_paper.md`` by construction (``calibrate.py``: exact sums of
integers, so means and SDs round to the printed digits and the Student t P values print as published),
and its X-ray reads are set to Table 3's legible row. Other sites draw from the same model with their
own size, case mix and a site effect in sign prevalence and reader sensitivity.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from cohortpool.contract import FINDINGS
from cohortpool.synth.calibrate import calibrated_sample
from cohortpool.synth.findings import (
    PREVALENCE,
    XR_TABLE3,
    Vertebra,
    draw_levels,
    draw_vertebra,
    read_vertebra,
    set_xr_count,
    split_count,
)
from cohortpool.synth.people import Name, address, person_name, phone, staff_name
from cohortpool.synth.vendors import SiteProfile


#: site 1's Table 1 (vcf_paper.md): n, vertebrae, age mean/SD/range, BMI mean/SD/range, men, osteoporotic
@dataclass(frozen=True)
class GroupSpec:
    """One column of Table 1 (plus the group's vertebra count from Table 3)."""

    n: int
    vertebrae: int
    age: tuple[float, float, float, float]  # mean, SD, min, max
    bmi: tuple[float, float, float, float]
    men: int
    osteoporotic: int


TABLE1 = {
    # BMI targets sit inside the printed rounding windows where Student's t prints P = 0.468 (vcf_paper.md)
    "OP": GroupSpec(50, 98, (69.58, 8.457, 48, 89), (23.380, 3.306, 15.43, 31.56), men=6, osteoporotic=50),
    "MET": GroupSpec(31, 43, (62.13, 10.773, 39, 83), (22.867, 2.666, 18.13, 28.18), men=22, osteoporotic=9),
}
#: the enrolment window ends this many days before the night and spans the paper's 30 months
WINDOW_DAYS = 912
WINDOW_END_GAP = 10
_TUMOURS_M = (("lung", 0.45), ("prostate", 0.2), ("kidney", 0.1), ("liver", 0.1), ("thyroid", 0.05),
              ("other", 0.1))  # fmt: skip
_TUMOURS_F = (("lung", 0.3), ("breast", 0.4), ("kidney", 0.08), ("thyroid", 0.1), ("liver", 0.04),
              ("other", 0.08))  # fmt: skip


@dataclass
class Study:
    """One imaging study (the unit an accession number names)."""

    modality: str  # XR, CT, MR
    accession: str
    date: dt.date
    time: str  # HHMMSS
    study_id: str
    referring: Name
    operator: Name
    reader: Name
    read_date: dt.date


@dataclass
class Patient:
    """One patient of a site, with everything the site's exports say about them."""

    index: int
    mrn: str
    name: Name
    sex: str
    birth_date: dt.date
    age: int
    address: str
    phone: str
    height_cm: float
    weight_kg: float
    bmi: float
    t_score: float
    diagnosis: str
    pathology_confirmed: str
    primary_tumour: str
    first_exam_date: dt.date
    other_id: str
    studies: dict[str, Study] = field(default_factory=dict)
    vertebrae: list[Vertebra] = field(default_factory=list)


@dataclass
class Cohort:
    """A site's night export, before it is written."""

    profile: SiteProfile
    night: dt.date
    patients: list[Patient]
    town: str


def completed_years(birth: dt.date, on: dt.date) -> int:
    """Age in completed years on a date (how the downstream stage derives ``age_years``)."""
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def birth_date_for(rng: np.random.Generator, age: int, exam: dt.date) -> dt.date:
    """A birth date at which the patient is exactly ``age`` completed years old on ``exam``."""
    day = 28 if (exam.month, exam.day) == (2, 29) else exam.day
    anniversary = dt.date(exam.year - age, exam.month, day)
    birth = anniversary - dt.timedelta(days=int(rng.integers(0, 360)))
    if completed_years(birth, exam) != age:  # cannot happen with < 365 days back; guard the invariant
        raise AssertionError(f"birth date {birth} does not give age {age} on {exam}")
    return birth


def _clock(rng: np.random.Generator) -> str:
    """A working-hours time of day, HHMMSS."""
    return f"{int(rng.integers(7, 19)):02d}{int(rng.integers(0, 60)):02d}{int(rng.integers(0, 60)):02d}"


def _site_rng(seed: int, profile: SiteProfile, purpose: int) -> np.random.Generator:
    return np.random.default_rng([seed, profile.number, purpose])


@dataclass(frozen=True)
class Demographics:
    """The Table 1 variables of one patient, before the patient is placed in the export."""

    diagnosis: str
    age: int
    bmi: float
    sex: str
    t_score: float


def _demographics(rng: np.random.Generator, profile: SiteProfile) -> list[Demographics]:
    """Group, age, BMI, sex, T-score per patient; site 1 exactly as Table 1."""
    rows: list[Demographics] = []
    for group, n in (("OP", profile.n_op), ("MET", profile.n_met)):
        if profile.number == 1:
            spec = TABLE1[group]
            ages = calibrated_sample(rng, n, *spec.age, decimals=2, sd_decimals=3)
            bmis = [
                v / 100 for v in calibrated_sample(rng, n, *spec.bmi, decimals=3, sd_decimals=3, scale=100)
            ]
            men = {int(i) for i in rng.permutation(n)[: spec.men]}
            osteo = {int(i) for i in rng.permutation(n)[: spec.osteoporotic]}
        else:
            mean_age, sd_age = (70.0, 8.5) if group == "OP" else (62.0, 11.0)
            ages = np.clip(np.rint(rng.normal(mean_age, sd_age, n)), 38, 94).astype(int).tolist()
            mean_bmi, sd_bmi = (23.3, 3.3) if group == "OP" else (22.8, 2.8)
            bmis = np.round(np.clip(rng.normal(mean_bmi, sd_bmi, n), 15.5, 36.0), 2).tolist()
            p_men = 0.15 if group == "OP" else 0.65
            men = {i for i in range(n) if rng.random() < p_men}
            p_osteo = 0.92 if group == "OP" else 0.3
            osteo = {i for i in range(n) if rng.random() < p_osteo}
        for i in range(n):
            t = float(rng.uniform(-4.6, -2.5) if i in osteo else rng.uniform(-2.4, 0.8))
            rows.append(Demographics(group, int(ages[i]), float(bmis[i]), "M" if i in men else "F", t))
    return rows


def _tumour(rng: np.random.Generator, sex: str) -> str:
    table = _TUMOURS_M if sex == "M" else _TUMOURS_F
    p = np.array([w for _, w in table])
    return table[int(rng.choice(len(table), p=p / p.sum()))][0]


def _vertebra_counts(rng: np.random.Generator, profile: SiteProfile, rows: list[Demographics]) -> list[int]:
    counts: list[int] = []
    for group in ("OP", "MET"):
        n = sum(1 for r in rows if r.diagnosis == group)
        if profile.number == 1:
            counts += split_count(rng, TABLE1[group].vertebrae, n)
        else:
            extra = 1.0 if group == "OP" else 0.4
            counts += [1 + min(3, int(rng.poisson(extra))) for _ in range(n)]
    return counts


def build_cohort(profile: SiteProfile, seed: int, night: dt.date) -> Cohort:
    """All patients of one site for one night's export (deterministic in ``seed``)."""
    rng = _site_rng(seed, profile, 0)
    town = profile.institution_address.split(",")[-1].strip() if profile.name_style == "en" else "虚构市"
    staff_rng = _site_rng(seed, profile, 1)
    radiologists = [staff_name(staff_rng, profile.name_style) for _ in range(2)]
    referrers = [staff_name(staff_rng, profile.name_style) for _ in range(4)]
    operators = [staff_name(staff_rng, profile.name_style) for _ in range(3)]
    rows = _demographics(rng, profile)
    counts = _vertebra_counts(rng, profile, rows)
    # export order: by first exam date, not by group
    start = night - dt.timedelta(days=WINDOW_DAYS)
    span = WINDOW_DAYS - WINDOW_END_GAP
    offsets = sorted(int(x) for x in rng.integers(0, span + 1, size=len(rows)))
    order = [int(i) for i in rng.permutation(len(rows))]
    mrn_numbers = rng.choice(10 ** (profile.mrn_digits - 1), size=len(rows), replace=False)
    acc_counter = int(rng.integers(1000, 5000))
    prev_shift = {f: float(rng.normal(0, 0.35)) if profile.number > 1 else 0.0 for f in PREVALENCE}
    xr_s, ct_s, mr_s = (float(x) for x in rng.normal(0, 0.3, 3)) if profile.number > 1 else (0.0, 0.0, 0.0)
    sens_shift = (xr_s, ct_s, mr_s)
    patients: list[Patient] = []
    for k, src in enumerate(order):
        row = rows[src]
        prng = _site_rng(seed, profile, 1000 + k)
        sex, group = row.sex, row.diagnosis
        exam = start + dt.timedelta(days=offsets[k])
        age = row.age
        bmi = round(row.bmi, 2)
        height = round(float(prng.normal(168 if sex == "M" else 157, 6)), 1)
        weight = round(bmi * (height / 100) ** 2, 1)
        name = person_name(prng, profile.name_style, sex)
        patient = Patient(
            index=k,
            mrn=f"{profile.mrn_prefix}{int(mrn_numbers[k]):0{profile.mrn_digits}d}",
            name=name,
            sex=sex,
            birth_date=birth_date_for(prng, age, exam),
            age=age,
            address=address(prng, profile.name_style, town),
            phone=phone(prng, profile.name_style),
            height_cm=height,
            weight_kg=weight,
            bmi=bmi,
            t_score=round(row.t_score, 1),
            diagnosis=group,
            pathology_confirmed="yes" if profile.number == 1 or prng.random() > 0.04 else "no",
            primary_tumour=_tumour(prng, sex) if group == "MET" else "",
            first_exam_date=exam,
            other_id=f"{int(prng.integers(10**9, 10**10))}",
        )
        for m, modality in enumerate(("XR", "CT", "MR")):
            acc_counter += int(prng.integers(1, 40))
            day = exam + dt.timedelta(days=0 if m == 0 else int(prng.integers(0, 3 + 2 * m)))
            code = profile.xr_modality if modality == "XR" else modality
            patient.studies[modality] = Study(
                modality=modality,
                accession=f"{profile.accession_prefix}{code}{day:%y%m%d}{acc_counter:05d}",
                date=day,
                time=_clock(prng),
                study_id=f"{acc_counter % 100000}",
                referring=referrers[int(prng.integers(len(referrers)))],
                operator=operators[int(prng.integers(len(operators)))],
                reader=radiologists[int(prng.integers(len(radiologists)))],
                read_date=day + dt.timedelta(days=int(prng.integers(0, 3))),
            )
        for level in draw_levels(prng, group, counts[src]):
            v = draw_vertebra(prng, level, group, prev_shift)
            read_vertebra(prng, v, sens_shift)
            patient.vertebrae.append(v)
        patients.append(patient)
    if profile.number == 1:
        cal = _site_rng(seed, profile, 2)
        for (group, finding), target in sorted(XR_TABLE3.items()):
            pool = [v for p in patients if p.diagnosis == group for v in p.vertebrae]
            set_xr_count(cal, pool, finding, target)
    return Cohort(profile=profile, night=night, patients=patients, town=town)


def count_reads(cohort: Cohort, group: str, modality: str, finding: str) -> int:
    """Vertebrae of ``group`` read positive for ``finding`` on ``modality`` (``ALL`` = any)."""
    total = 0
    for p in cohort.patients:
        if p.diagnosis != group:
            continue
        for v in p.vertebrae:
            mods = ("XR", "CT", "MR") if modality == "ALL" else (modality,)
            total += any(v.reads[m][finding] for m in mods)
    return total


__all__ = ["FINDINGS", "Cohort", "Patient", "Study", "build_cohort", "completed_years", "count_reads"]
