"""How GX results become findings: errored expectations and truncated row lists are never quiet."""

from __future__ import annotations

from great_expectations.core import ExpectationValidationResult
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

from cohortpool.validate.run import SuiteRunner, TableRun, exception_message, expectation_label
from cohortpool.validate.suites import load_suite


def _result(
    result: dict, exception_info: dict | None = None, success: bool = False
) -> ExpectationValidationResult:
    config = ExpectationConfiguration(
        type="expect_column_values_to_be_in_set",
        kwargs={"column": "level", "value_set": ["L1"]},
        meta={"severity": "error", "reason": "level must be a vertebral level"},
    )
    return ExpectationValidationResult(
        success=success, expectation_config=config, result=result, exception_info=exception_info or {}
    )


def _collect(exp_result: ExpectationValidationResult) -> TableRun:
    run = TableRun()
    SuiteRunner._collect(None, load_suite("reads"), "typed", exp_result, run)  # type: ignore[arg-type]
    return run


def test_failing_rows_become_findings_at_their_positions() -> None:
    run = _collect(_result({"unexpected_count": 2, "unexpected_index_list": [3, 7]}))
    assert [(f.position, f.severity) for f in run.findings] == [(3, "error"), (7, "error")]
    assert run.outcomes[0].unexpected_count == 2 and not run.outcomes[0].errored


def test_a_truncated_row_list_counts_as_an_error_of_the_whole_table() -> None:
    run = _collect(_result({"unexpected_count": 25, "unexpected_index_list": list(range(20))}))
    assert run.outcomes[0].errored and "20 row indexes for 25" in run.outcomes[0].errored
    assert [(f.position, f.severity) for f in run.findings] == [(None, "error")]


def test_an_expectation_that_raised_is_an_error_even_if_gx_nests_the_exception() -> None:
    nested = {
        "MetricConfigurationID(...)": {
            "raised_exception": True,
            "exception_message": "list index out of range",
        }
    }
    assert exception_message(nested) == "list index out of range"
    assert exception_message({"raised_exception": False, "exception_message": None}) is None
    run = _collect(_result({}, nested))
    assert run.errored and run.findings[0].position is None
    assert "could not be evaluated (list index out of range)" in run.findings[0].reason


def test_labels_name_type_columns_and_condition() -> None:
    assert (
        expectation_label(
            "expect_column_values_to_be_between",
            {
                "column": "echo_time",
                "row_condition": {"type": "pass_through", "pass_through_filter": 'a=="b"'},
            },
        )
        == 'column_values_to_be_between(echo_time) where a=="b"'
    )


def test_a_column_of_the_wrong_type_rejects_the_table(tmp_path) -> None:
    """expect_column_type_to_be is table-level: a wrong dtype has no rows to point at, so all rows go."""
    from validate_support import copy_clean

    from cohortpool.validate.frames import read_table
    from cohortpool.validate.quarantine import split_table

    suite = load_suite("clinical")
    frames = read_table(copy_clean(tmp_path / "sub"), suite)
    frames.typed["age_years"] = frames.typed["age_years"].astype("float64")
    run = SuiteRunner().run(suite, frames, "site02")
    assert [o.expectation for o in run.outcomes if not o.success] == ["column_type_to_be(age_years)"]
    split = split_table(frames, suite, run.findings)
    assert split.rejected is not None and "column_type_to_be(age_years)" in split.rejected
    assert (split.quarantined, len(split.accepted)) == (4, 0)


def test_a_column_outside_the_contract_is_a_warning_and_is_not_loaded(tmp_path) -> None:
    import pandas as pd
    from validate_support import copy_clean

    from cohortpool.validate.frames import read_table
    from cohortpool.validate.quarantine import split_table

    sub = copy_clean(tmp_path / "sub")
    clinical = pd.read_csv(sub / "clinical.csv", dtype=str, keep_default_na=False)
    clinical.insert(2, "patient_name", "Doe^Jane")
    clinical.to_csv(sub / "clinical.csv", index=False)
    suite = load_suite("clinical")
    frames = read_table(sub, suite)
    assert frames.extra_columns == ["patient_name"]
    split = split_table(frames, suite, SuiteRunner().run(suite, frames, "site02").findings)
    assert list(split.warnings["expectation"]) == ["table_columns_to_match_set"]
    assert split.warnings.iloc[0]["value"] == "unexpected: patient_name"
    assert split.warned == 0  # a table-level warning flags no row
    assert (split.quarantined, len(split.accepted)) == (0, 4)
    assert "patient_name" not in split.accepted.columns
    assert "Doe" not in split.warnings.to_csv()
