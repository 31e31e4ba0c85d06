"""Fractured vertebrae, their true signs, and what each modality's reader sees.

Each vertebra gets true signs drawn from group prevalences (Table 2's directions of ``vcf_paper.md``),
then every modality reads it: a sign is reported with the modality's sensitivity, shifted by a
per-vertebra conspicuity shared by the three reads (an obvious fracture is obvious everywhere, so the
paired reads are correlated, as real ones are). CT is the most sensitive for fracture lines, MRI for
marrow oedema, soft-tissue mass and the MR-only fat signal; no single modality sees all bone destruction,
so the three combined see most. Site 1's X-ray counts are then set to Table 3's legible row exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from cohortpool.contract import FINDINGS, READ_MODALITIES

MODALITIES = READ_MODALITIES
LEVELS = tuple(f"T{i}" for i in range(1, 13)) + tuple(f"L{i}" for i in range(1, 6))

#: true prevalence per vertebra (OP, MET); Table 2: MET more often bulging, collapse, posterior elements,
#: soft-tissue mass, normal disc; less often wedge, posterior fat signal, cleft, disc compression
PREVALENCE: dict[str, tuple[float, float]] = {
    "fracture_line": (0.95, 0.85),
    "marrow_oedema": (0.88, 0.80),
    "soft_tissue_mass": (0.03, 0.55),
    "bone_destruction": (0.02, 0.90),
    "posterior_wall_bulging": (0.12, 0.65),
    "posterior_element_involvement": (0.05, 0.55),
    "wedge_shape": (0.75, 0.25),
    "posterior_fat_signal": (0.65, 0.15),
    "intravertebral_cleft": (0.45, 0.04),
    "whole_body_collapse": (0.10, 0.55),
}
#: disc state probabilities (normal, compressed) per group; the rest are degenerate but not compressed
DISC = {"OP": (0.30, 0.55), "MET": (0.80, 0.08)}
#: reader sensitivity per modality (XR, CT, MR); 0 where the modality cannot show the sign
SENSITIVITY: dict[str, tuple[float, float, float]] = {
    "fracture_line": (0.58, 0.97, 0.80),
    "marrow_oedema": (0.01, 0.06, 0.97),
    "soft_tissue_mass": (0.08, 0.60, 0.95),
    "bone_destruction": (0.33, 0.76, 0.70),
    "posterior_wall_bulging": (0.40, 0.85, 0.90),
    "posterior_element_involvement": (0.30, 0.85, 0.90),
    "wedge_shape": (0.88, 0.92, 0.90),
    "posterior_fat_signal": (0.0, 0.0, 0.92),
    "intravertebral_cleft": (0.50, 0.88, 0.80),
    "normal_disc": (0.85, 0.88, 0.92),
    "disc_compression": (0.60, 0.75, 0.90),
    "whole_body_collapse": (0.85, 0.92, 0.92),
}
#: reported although absent (XR reads are noisier)
FALSE_POSITIVE = (0.02, 0.01, 0.01)

#: site 1, X-ray row of Table 3 (vcf_paper.md): (group, finding) -> vertebrae read positive on X-ray
XR_TABLE3 = {
    ("OP", "fracture_line"): 56,
    ("OP", "marrow_oedema"): 1,
    ("MET", "fracture_line"): 18,
    ("MET", "bone_destruction"): 13,
    ("MET", "soft_tissue_mass"): 2,
}

# level weights: osteoporotic fractures cluster at the thoracolumbar junction, metastases spread wider
_OP_LEVEL_W = np.array([0.2] * 5 + [1, 1.5, 2, 3, 4, 6, 9, 10, 6, 3, 2, 1], dtype=float)
_MET_LEVEL_W = np.array([1.5] * 5 + [2.5] * 7 + [3, 3, 3, 3, 2.5], dtype=float)


@dataclass
class Vertebra:
    """One fractured vertebra: truth, conspicuity, and each modality's read."""

    level: str
    truth: dict[str, bool]
    height_loss: float  # true %, 1 decimal
    conspicuity: float
    reads: dict[str, dict[str, bool]] = field(default_factory=dict)
    measured_loss: dict[str, float] = field(default_factory=dict)


def genant_grade(height_loss_pct: float) -> int:
    """Genant semi-quantitative grade; boundaries closed as the contract states.

    <20 -> 0, 20-25 -> 1, >25-40 -> 2, >40 -> 3.
    """
    if height_loss_pct < 20:
        return 0
    if height_loss_pct <= 25:
        return 1
    if height_loss_pct <= 40:
        return 2
    return 3


def _expit(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def shifted(p: float, shift: float) -> float:
    """``p`` moved by ``shift`` on the logit scale (how a site or a vertebra differs)."""
    if p <= 0.0 or p >= 1.0:
        return p
    return _expit(_logit(p) + shift)


def split_count(rng: np.random.Generator, total: int, n: int, cap: int = 4) -> list[int]:
    """``n`` counts >= 1 and <= ``cap`` summing to ``total`` (vertebrae per patient)."""
    if not n <= total <= n * cap:
        raise ValueError(f"cannot split {total} vertebrae over {n} patients with at most {cap} each")
    counts = [1] * n
    for _ in range(total - n):
        open_ = [i for i in range(n) if counts[i] < cap]
        weights = np.array([1.0 / counts[i] ** 1.5 for i in open_])
        counts[open_[int(rng.choice(len(open_), p=weights / weights.sum()))]] += 1
    return counts


def draw_levels(rng: np.random.Generator, diagnosis: str, count: int) -> list[str]:
    """Distinct fractured levels of one patient, in spinal order."""
    weights = _OP_LEVEL_W if diagnosis == "OP" else _MET_LEVEL_W
    idx = rng.choice(len(LEVELS), size=count, replace=False, p=weights / weights.sum())
    return [LEVELS[i] for i in sorted(int(i) for i in idx)]


def draw_vertebra(
    rng: np.random.Generator, level: str, diagnosis: str, site_shift: dict[str, float]
) -> Vertebra:
    """True signs of one fractured vertebra (site shift on the logit scale)."""
    g = 0 if diagnosis == "OP" else 1
    truth = {f: bool(rng.random() < shifted(p[g], site_shift.get(f, 0.0))) for f, p in PREVALENCE.items()}
    normal_p, compressed_p = DISC[diagnosis]
    u = rng.random()
    truth["normal_disc"] = bool(u < normal_p)
    truth["disc_compression"] = bool(normal_p <= u < normal_p + compressed_p)
    if truth["whole_body_collapse"]:
        loss = rng.uniform(40.5, 75.0)
    elif truth["wedge_shape"] or rng.random() < 0.7:
        loss = rng.uniform(20.0, 40.0)
    else:
        loss = rng.uniform(12.0, 20.0)
    return Vertebra(level, truth, round(float(loss), 1), float(rng.normal()))


def read_vertebra(rng: np.random.Generator, v: Vertebra, sens_shift: tuple[float, float, float]) -> None:
    """Fill ``v.reads`` and ``v.measured_loss`` for the three modalities."""
    for m, modality in enumerate(MODALITIES):
        seen: dict[str, bool] = {}
        for finding in FINDINGS:
            sens = SENSITIVITY[finding][m]
            if v.truth[finding]:
                p = shifted(sens, 0.6 * v.conspicuity + sens_shift[m])
            else:
                p = FALSE_POSITIVE[m] if sens > 0 else 0.0
            seen[finding] = bool(rng.random() < p)
        if seen["disc_compression"]:
            seen["normal_disc"] = False  # a reader never calls a compressed disc normal
        v.reads[modality] = seen
        # radiographs measure height loss less precisely than cross-sectional images
        noise = (2.0, 1.0, 1.2)[m]
        v.measured_loss[modality] = round(max(0.0, v.height_loss + float(rng.normal(0, noise))), 1)


def set_xr_count(rng: np.random.Generator, vertebrae: list[Vertebra], finding: str, target: int) -> None:
    """Make exactly ``target`` of ``vertebrae`` read positive for ``finding`` on X-ray.

    Flips the fewest reads: adds positives first where the sign is truly present (and CT saw it), removes
    them first where it is absent, so the X-ray read stays plausible against the other modalities.
    """
    reads = [v.reads["XR"] for v in vertebrae]
    current = sum(r[finding] for r in reads)
    order = [int(i) for i in rng.permutation(len(vertebrae))]
    if current < target:
        pool = [i for i in order if not reads[i][finding]]
        pool.sort(key=lambda i: (not vertebrae[i].truth[finding], not vertebrae[i].reads["CT"][finding]))
        for i in pool[: target - current]:
            reads[i][finding] = True
            if finding == "disc_compression":
                reads[i]["normal_disc"] = False
    elif current > target:
        pool = [i for i in order if reads[i][finding]]
        pool.sort(key=lambda i: (vertebrae[i].truth[finding], vertebrae[i].conspicuity))
        for i in pool[: current - target]:
            reads[i][finding] = False
