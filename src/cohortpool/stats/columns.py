"""Group comparison of any table (``cohortpool stats compare``): infer each column's type, then compare.

Type rule (the CLI contract): a numeric column with more than two distinct values is continuous; 0/1,
yes/no, true/false and text columns are categorical; explicit lists override. Text columns with more than ten
levels where over half the values are distinct (identifiers, dates, names) are skipped unless named
explicitly: a table of 200 patient ids is not a variable, and testing it would only burn time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cohortpool.stats import format as fmt
from cohortpool.stats.categorical import compare_categorical
from cohortpool.stats.continuous import compare_continuous

BINARY_SETS = ({"0", "1"}, {"yes", "no"}, {"true", "false"}, {"y", "n"})
#: cell texts read as missing besides an empty cell: R's NA, N/A, and SPSS's system-missing "."
MISSING_TOKENS: tuple[str, ...] = ("NA", "N/A", ".")
_POSITIVE = ("1", "yes", "true", "y")


class CompareError(ValueError):
    """Bad usage of the comparison: names the column and what to do."""


@dataclass(frozen=True)
class ColumnTypes:
    """Which columns are compared as what, and which were skipped (with why)."""

    continuous: tuple[str, ...]
    categorical: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]


def _is_binary_text(values: pd.Series) -> bool:
    lowered = set(values.astype(str).str.strip().str.lower())
    return any(lowered <= s for s in BINARY_SETS)


def infer_types(
    frame: pd.DataFrame,
    group: str,
    continuous: Iterable[str] = (),
    categorical: Iterable[str] = (),
) -> ColumnTypes:
    """Classify every column but the group column; explicit names win over inference."""
    cont, cat = list(continuous), list(categorical)
    for name in [*cont, *cat, group]:
        if name not in frame.columns:
            raise CompareError(
                f"column {name!r} is not in the table; columns are: {', '.join(frame.columns)}"
            )
    both = sorted(set(cont) & set(cat))
    if both:
        raise CompareError(f"columns {both} are listed as both continuous and categorical")
    if group in cont or group in cat:
        raise CompareError(f"the group column {group!r} cannot also be a variable")
    out_cont: list[str] = []
    out_cat: list[str] = []
    skipped: list[tuple[str, str]] = []
    for col in frame.columns:
        if col == group:
            continue
        if col in cont:
            out_cont.append(col)
            continue
        if col in cat:
            out_cat.append(col)
            continue
        values = frame[col].dropna()
        values = values[values.astype(str).str.strip() != ""]
        if values.empty:
            skipped.append((col, "no values"))
            continue
        numeric = pd.to_numeric(values, errors="coerce")
        if numeric.notna().all() and numeric.nunique() > 2 and not _is_binary_text(values):
            out_cont.append(col)
        elif numeric.notna().all() or _is_binary_text(values):
            out_cat.append(col)
        elif values.nunique() > 10 and values.nunique() > len(values) // 2:
            why = "over half the values distinct (an identifier, name or date?); name it with --categorical"
            skipped.append((col, why))
        else:
            out_cat.append(col)
    return ColumnTypes(tuple(out_cont), tuple(out_cat), tuple(skipped))


def mark_missing(
    frame: pd.DataFrame, tokens: Iterable[str] = MISSING_TOKENS
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The frame with every cell equal to one of ``tokens`` (exactly, as R's ``na.strings``) set missing,
    and how many cells each token turned missing (for the note the CLI prints)."""
    wanted = [t for t in dict.fromkeys(tokens) if t != ""]
    text = frame.astype("string")
    found = {token: int((text == token).sum().sum()) for token in wanted}
    if not any(found.values()):
        return frame, {}
    return frame.mask(text.isin(wanted).fillna(False)), {t: n for t, n in found.items() if n}


def _groups(values: pd.Series, group: str, reference: str | None) -> list[str]:
    """The two groups, reference first: ``reference`` if given, else the first in sorted order."""
    groups = sorted(x for x in values.dropna().unique() if x != "")
    if len(groups) != 2:
        shown = ", ".join(groups[:10])
        raise CompareError(
            f"group column {group!r} has {len(groups)} groups ({shown}); compare needs exactly 2"
        )
    if reference is None:
        return groups
    if reference not in groups:
        raise CompareError(
            f"--reference {reference!r} is not a group of {group!r}; the groups are {', '.join(groups)}"
        )
    return [reference, *[g for g in groups if g != reference]]


def _shown_level(levels: list[str]) -> str | None:
    """The level a binary variable is summarised by: the positive one, else the last in sorted order."""
    if len(levels) != 2:
        return None
    for lv in levels:
        if lv.strip().lower() in _POSITIVE:
            return lv
    return sorted(levels)[-1]


def compare_columns(
    frame: pd.DataFrame,
    group: str,
    continuous: Iterable[str] = (),
    categorical: Iterable[str] = (),
    *,
    seed: int = 20251001,
    reference: str | None = None,
) -> tuple[pd.DataFrame, ColumnTypes]:
    """One row per variable: ``variable, test, statistic, df, p_value, p_display, summary_<group>...``.

    Effects (mean differences, odds ratios) are the second group vs the ``reference`` group (default: the
    first of the two in sorted order), as the report's are MET vs OP with ``--reference OP``.
    """
    types = infer_types(frame, group, continuous, categorical)
    g = frame[group].astype("string").str.strip()
    groups = _groups(g, group, reference)
    rows: list[dict[str, object]] = []
    for col in types.continuous:
        x = pd.to_numeric(frame[col], errors="coerce")
        bad = frame[col].notna() & (frame[col].astype(str).str.strip() != "") & x.isna()
        if bad.any():
            first = int(np.flatnonzero(bad.to_numpy())[0]) + 1
            raise CompareError(
                f"column {col!r}, data row {first}: {frame[col].iloc[first - 1]!r} is not a number; "
                "fix the value or list the column with --categorical"
            )
        r = compare_continuous(x[g == groups[0]], x[g == groups[1]])
        row: dict[str, object] = {
            "variable": col, "level": "", "test": r.test, "statistic": r.statistic, "df": r.df,
            "p_value": r.p_value, "p_display": fmt.format_p(r.p_value),
        }  # fmt: skip
        for name, s in zip(groups, r.summaries, strict=True):
            row[f"n_{name}"] = s.n
            row[f"summary_{name}"] = fmt.mean_sd(s.mean, s.sd)
        row.update(
            mean_difference=r.mean_difference, md_ci_low=r.md_ci_low, md_ci_high=r.md_ci_high,
            welch_t=r.welch_t, welch_df=r.welch_df, welch_p=r.welch_p, levene_f=r.levene_f,
            levene_p=r.levene_p, mann_whitney_u=r.mann_whitney_u, mann_whitney_p=r.mann_whitney_p,
        )  # fmt: skip
        row["warnings"] = "; ".join(r.warnings)
        rows.append(row)
    for col in types.categorical:
        v = frame[col].astype("string").str.strip()
        v = v.where(v != "")
        levels = sorted(v.dropna().unique())
        tab = np.array([[int(((g == grp) & (v == lv)).sum()) for lv in levels] for grp in groups])
        rc = compare_categorical(tab, seed=seed)
        level = _shown_level(levels)
        row = {
            "variable": col, "level": level or "", "test": rc.test, "statistic": rc.statistic, "df": rc.df,
            "p_value": rc.p_value, "p_display": fmt.format_p(rc.p_value),
        }  # fmt: skip
        for i, name in enumerate(groups):
            total = int(tab[i].sum())
            row[f"n_{name}"] = total
            if level is not None:
                row[f"summary_{name}"] = fmt.count_percent(int(tab[i, levels.index(level)]), total)
            else:
                row[f"summary_{name}"] = "; ".join(
                    f"{lv}: {fmt.count_percent(int(tab[i, j]), total)}" for j, lv in enumerate(levels)
                )
        row.update(odds_ratio=rc.odds_ratio, or_ci_low=rc.or_ci_low, or_ci_high=rc.or_ci_high)
        row["warnings"] = "; ".join(rc.warnings)
        rows.append(row)
    order = {c: i for i, c in enumerate(frame.columns)}
    out = pd.DataFrame(rows)
    if not out.empty:
        out = out.sort_values("variable", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
        head = ["variable", "level", "test", "statistic", "df", "p_value", "p_display"]
        per_group = [f"{k}_{name}" for name in groups for k in ("n", "summary")]
        rest = [c for c in out.columns if c not in {*head, *per_group, "warnings"}]
        out = out[[*head, *per_group, *rest, "warnings"]]
    return out, types
