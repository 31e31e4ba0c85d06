"""`cohortpool stats compare`: the group comparison of any CSV, as an SPSS user would run it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cohortpool.cli._app import EXIT_USAGE, App, app

stats_app = App(help="Statistics on any table (group comparisons).", no_args_is_help=True)
app.add_typer(stats_app, name="stats")


def _names(text: str | None) -> list[str]:
    return [x.strip() for x in (text or "").split(",") if x.strip()]


@stats_app.command("compare")
def compare(
    csv: Annotated[Path, typer.Argument(help="CSV file (UTF-8, header row).")],
    group: Annotated[str, typer.Option("--group", help="Column holding the two groups.")],
    continuous: Annotated[str | None, typer.Option(help="Columns to treat as continuous: A,B")] = None,
    categorical: Annotated[str | None, typer.Option(help="Columns to treat as categorical: C,D")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the CSV here (default: stdout).")] = None,
    reference: Annotated[
        str | None,
        typer.Option(
            "--reference",
            help="The reference group: effects are the other group vs this one (default: the first in "
            "sorted order). The report's are MET vs OP: --reference OP.",
        ),
    ] = None,
    na_values: Annotated[
        str | None,
        typer.Option(
            "--na-values",
            help="Cell texts read as missing besides an empty cell, comma-separated, exact match "
            '(default: NA,N/A,. ; "" for none).',
        ),
    ] = None,
) -> None:
    """Compare two groups on every column: Student's t (Levene, Welch beside it) or chi-square / Fisher.

    Numeric columns with more than two distinct values are continuous; 0/1, yes/no, true/false and text
    columns are categorical, unless overridden. Empty cells and NA, N/A and "." (--na-values) are
    missing. One output row per variable.
    """
    import pandas as pd

    from cohortpool.stats.columns import MISSING_TOKENS, CompareError, compare_columns, mark_missing

    try:
        frame = pd.read_csv(csv, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8")
    except FileNotFoundError:
        typer.echo(f"error: {csv}: no such file", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        typer.echo(f"error: {csv}: cannot read as a UTF-8 CSV with a header row: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    tokens = MISSING_TOKENS if na_values is None else _names(na_values)
    frame, missing = mark_missing(frame, tokens)
    if missing:
        counted = ", ".join(f"{token!r} {n}" for token, n in missing.items())
        typer.echo(f"note: {sum(missing.values())} cell(s) read as missing ({counted})", err=True)
    try:
        result, types = compare_columns(
            frame, group, _names(continuous), _names(categorical), reference=reference
        )
    except CompareError as exc:
        typer.echo(f"error: {csv}: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    for col, why in types.skipped:
        typer.echo(f"note: column {col!r} skipped: {why}", err=True)
    from cohortpool.contract.csvio import formula_safe  # column names come from the user's CSV

    safe = result.map(formula_safe).rename(columns=formula_safe)
    text = safe.to_csv(index=False, lineterminator="\n")
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
