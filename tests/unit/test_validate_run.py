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
