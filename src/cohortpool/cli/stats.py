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
) -> None:
    """Compare two groups on every column: Student's t (Levene, Welch beside it) or chi-square / Fisher.

    Numeric columns with more than two distinct values are continuous; 0/1, yes/no, true/false and text
    columns are categorical, unless overridden. One output row per variable.
    """
    import pandas as pd

    from cohortpool.stats.columns import CompareError, compare_columns

    try:
        frame = pd.read_csv(csv, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8")
    except FileNotFoundError:
        typer.echo(f"error: {csv}: no such file", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        typer.echo(f"error: {csv}: cannot read as a UTF-8 CSV with a header row: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    try:
        result, types = compare_columns(frame, group, _names(continuous), _names(categorical))
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
