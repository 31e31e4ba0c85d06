"""A check's result as a plain record; GX's result objects are built only to render GX's pages.

Why plain records: importing Great Expectations costs about 140 MB of a process's memory (its own
modules, scipy, altair, sqlalchemy, ...), more than the 10^6-row table a night validates in chunks
adds (issue 16 item 2). The SQL engine (:mod:`cohortpool.validate.sqlrun`) needs nothing of GX to
check rows, so its results are these records, and GX is imported once the tables are written, to render
the Data Docs pages (:meth:`HalfResult.to_gx`). Where GX itself ran a check (the ``gx`` engine, or an
expectation the SQL cannot translate), the record keeps GX's own result and that is what is rendered.

The fields are named as GX names them (``success``, ``expectation_config.type``/``.kwargs``/``.meta``,
``result``, ``exception_info``), so code that reads a result reads either kind alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuiteValidationResult, ExpectationValidationResult
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration


@dataclass(frozen=True)
class CheckedExpectation:
    """What a result says it checked: an expectation of a reviewed suite, as the suite file holds it."""

    type: str
    kwargs: dict[str, Any]
    meta: dict[str, Any]

    @classmethod
    def of(cls, expectation: Mapping[str, Any]) -> CheckedExpectation:
        return cls(expectation["type"], dict(expectation["kwargs"]), dict(expectation.get("meta") or {}))


@dataclass
class CheckResult:
    """One expectation's result on a table half; ``position`` is its place in the suite file."""

    position: int
    success: bool
    expectation_config: CheckedExpectation | ExpectationConfiguration
    result: dict[str, Any]
    exception_info: dict[str, Any]
    #: GX's own result, where GX ran the check (rendered as it is)
    by_gx: ExpectationValidationResult | None = None

    @classmethod
    def from_gx(cls, position: int, gx_result: ExpectationValidationResult) -> CheckResult:
        """GX's result of the expectation at ``position``, sharing its ``result`` dictionary (what is
        dropped from one before publishing is dropped from the other)."""
        if gx_result.result is None:
            gx_result.result = {}
        if gx_result.expectation_config is None:
            raise RuntimeError(f"GX returned a result without its expectation (suite position {position})")
        return cls(
            position,
            bool(gx_result.success),
            gx_result.expectation_config,
            gx_result.result,
            dict(gx_result.exception_info or {}),
            gx_result,
        )

    def to_gx(self, configs: Mapping[int, ExpectationConfiguration]) -> ExpectationValidationResult:
        """This result as GX's object, with GX's configuration of the expectation at its position."""
        if self.by_gx is not None:
            return self.by_gx
        from great_expectations.core import ExpectationValidationResult

        return ExpectationValidationResult(
            success=self.success,
            expectation_config=configs[self.position],
            result=self.result,
            exception_info=self.exception_info,
        )


@dataclass
class HalfResult:
    """The results of a suite's half (``text`` or ``typed``) on a table, in suite order."""

    suite_name: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return all(r.success for r in self.results)

    def statistics(self) -> dict[str, Any]:
        successes = sum(r.success for r in self.results)
        return {
            "evaluated_expectations": len(self.results),
            "successful_expectations": successes,
            "unsuccessful_expectations": len(self.results) - successes,
            "success_percent": 100.0 * successes / len(self.results) if self.results else None,
        }

    def to_gx(
        self, configs: Mapping[int, ExpectationConfiguration], meta: dict[str, Any]
    ) -> ExpectationSuiteValidationResult:
        """GX's suite result for its page renderer (imports GX)."""
        from great_expectations.core import ExpectationSuiteValidationResult

        return ExpectationSuiteValidationResult(
            success=self.success,
            results=[r.to_gx(configs) for r in self.results],
            suite_name=self.suite_name,
            statistics=self.statistics(),
            meta=meta,
        )
