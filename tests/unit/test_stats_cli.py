"""`cohortpool stats compare` on any CSV: type inference, the output contract, clear errors."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from cohortpool.cli import app
from cohortpool.stats.columns import CompareError, infer_types
from cohortpool.stats.tests import COMPARISON_TESTS

runner = CliRunner()


@pytest.fixture
def table(tmp_path: Path) -> Path:
    rng = np.random.default_rng(4)
    n = 90
    group = np.where(np.arange(n) < 50, "OP", "MET")
    frame = pd.DataFrame({
        "id": [f"P{i:04d}" for i in range(n)],
        "group": group,
        "age": np.where(group == "OP", rng.normal(70, 8, n), rng.normal(62, 10, n)).round(),
        "smoker": rng.choice(["yes", "no"], n),
        "flag01": rng.choice(["0", "1"], n),
        "stage": rng.choice(["I", "II", "III"], n),
        "rare": ["a"] * 85 + ["b"] * 5,
        "two_numbers": rng.choice(["3", "7"], n),
    })  # fmt: skip
    path = tmp_path / "any.csv"
    frame.to_csv(path, index=False)
    return path


def test_types_are_inferred_by_the_documented_rule(table: Path) -> None:
    frame = pd.read_csv(table, dtype=str)
    types = infer_types(frame, "group")
    assert types.continuous == ("age",)
    assert set(types.categorical) == {"smoker", "flag01", "stage", "rare", "two_numbers"}
    assert [c for c, _ in types.skipped] == ["id"]
    overridden = infer_types(frame, "group", continuous=["two_numbers"], categorical=["id"])
    assert "two_numbers" in overridden.continuous and "id" in overridden.categorical


def test_compare_writes_the_contract_columns_one_row_per_variable(table: Path, tmp_path: Path) -> None:
    out = tmp_path / "result.csv"
    res = runner.invoke(app, ["stats", "compare", str(table), "--group", "group", "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    head = list(rows[0].keys())
    for col in ("variable", "test", "statistic", "df", "p_value", "p_display", "summary_MET", "summary_OP"):
        assert col in head
    assert [r["variable"] for r in rows] == ["age", "smoker", "flag01", "stage", "rare", "two_numbers"]
    assert {r["test"] for r in rows} <= set(COMPARISON_TESTS)
    age = rows[0]
    frame = pd.read_csv(table)
    ref = stats.ttest_ind(frame.loc[frame.group == "MET", "age"], frame.loc[frame.group == "OP", "age"])
    assert age["test"] == "student_t"
    assert float(age["p_value"]) == pytest.approx(ref.pvalue, rel=1e-12)
    assert " ± " in age["summary_OP"]
    rare = next(r for r in rows if r["variable"] == "rare")
    assert rare["test"] in {"fisher_exact", "yates_chi2"}


def test_stdout_is_the_default_output(table: Path) -> None:
    res = runner.invoke(app, ["stats", "compare", str(table), "--group", "group", "--categorical", "stage"])
    assert res.exit_code == 0
    frame = pd.read_csv(io.StringIO(res.stdout))
    assert "p_display" in frame.columns and len(frame) == 6


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--group", "nope"], "column 'nope' is not in the table"),
        (["--group", "stage"], "compare needs exactly 2"),
        (["--group", "group", "--continuous", "smoker"], "is not a number"),
        (
            ["--group", "group", "--continuous", "age", "--categorical", "age"],
            "both continuous and categorical",
        ),
    ],
)
def test_bad_usage_exits_2_naming_the_problem(table: Path, args: list[str], message: str) -> None:
    res = runner.invoke(app, ["stats", "compare", str(table), *args])
    assert res.exit_code == 2
    assert message in res.output


def test_missing_file_exits_2(tmp_path: Path) -> None:
    res = runner.invoke(app, ["stats", "compare", str(tmp_path / "no.csv"), "--group", "g"])
    assert res.exit_code == 2 and "no such file" in res.output


def test_infer_types_rejects_group_as_variable() -> None:
    with pytest.raises(CompareError):
        infer_types(pd.DataFrame({"g": ["a", "b"], "x": ["1", "2"]}), "g", categorical=["g"])


def test_console_script_help_lists_compare() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "cohortpool", "stats", "compare", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--group" in out and "--continuous" in out and "--categorical" in out and "--out" in out


def _compare(path: Path, *extra: str) -> tuple[pd.DataFrame, str]:
    res = runner.invoke(app, ["stats", "compare", str(path), "--group", "group", *extra])
    assert res.exit_code == 0, res.output
    text = res.stdout
    return pd.read_csv(io.StringIO(text), keep_default_na=False), res.stderr


def test_reference_group_sets_the_direction_of_every_effect(table: Path) -> None:
    default, _ = _compare(table)  # MET sorts first: effects are OP vs MET
    report, _ = _compare(table, "--reference", "OP")  # the report's direction: MET vs OP
    age_default = default.set_index("variable").loc["age"]
    age_report = report.set_index("variable").loc["age"]
    frame = pd.read_csv(table)
    met, op = frame.loc[frame.group == "MET", "age"].mean(), frame.loc[frame.group == "OP", "age"].mean()
    assert float(age_report["mean_difference"]) == pytest.approx(met - op)
    assert float(age_default["mean_difference"]) == pytest.approx(op - met)
    assert float(age_report["statistic"]) == pytest.approx(-float(age_default["statistic"]))
    smoker_default = default.set_index("variable").loc["smoker"]
    smoker_report = report.set_index("variable").loc["smoker"]
    assert float(smoker_report["odds_ratio"]) == pytest.approx(1 / float(smoker_default["odds_ratio"]))
    assert list(report.columns[7:11]) == ["n_OP", "summary_OP", "n_MET", "summary_MET"]


def test_unknown_reference_is_bad_usage_naming_the_groups(table: Path) -> None:
    res = runner.invoke(app, ["stats", "compare", str(table), "--group", "group", "--reference", "op"])
    assert res.exit_code == 2
    assert "'op' is not a group" in res.output and "MET, OP" in res.output


def test_missing_value_tokens_read_as_missing_with_a_note(tmp_path: Path) -> None:
    rows = ["group,age,smoker"] + [
        f"{'OP' if i % 2 else 'MET'},{60 + i % 17},{'yes' if i % 3 else 'no'}" for i in range(40)
    ]
    clean = tmp_path / "clean.csv"
    clean.write_text("\n".join([*rows, "OP,,", "MET,,", "OP,,", ",70,yes"]) + "\n", encoding="utf-8")
    tokens = tmp_path / "tokens.csv"
    tokens.write_text(
        "\n".join([*rows, "OP,NA,N/A", "MET,.,NA", "OP,N/A,.", "NA,70,yes"]) + "\n", encoding="utf-8"
    )
    expected, _ = _compare(clean)
    found, note = _compare(tokens)
    pd.testing.assert_frame_equal(found, expected)
    assert "7 cell(s) read as missing ('NA' 3, 'N/A' 2, '.' 2)" in note
    # configurable: a site's own code for missing
    coded = tmp_path / "coded.csv"
    coded.write_text("\n".join([*rows, "OP,-99,", "MET,-99,", "OP,-99,", ",70,yes"]) + "\n", encoding="utf-8")
    recoded, note = _compare(coded, "--na-values", "-99")
    pd.testing.assert_frame_equal(recoded, expected)
    assert "'-99' 3" in note
    # and with no tokens, NA is a value: here a third group
    res = runner.invoke(app, ["stats", "compare", str(tokens), "--group", "group", "--na-values", ""])
    assert res.exit_code == 2 and "3 groups (MET, NA, OP)" in res.output
