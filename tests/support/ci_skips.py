"""A pytest plugin: in CI (`CI=true`) a skipped test fails the run, unless its skip is on the allow-list.

`make test` installs every tool the suite needs (Chromium, the SAM CLI, python3.12, torch), so in CI a
skip means a tool went missing and a whole module stopped testing anything while the run stayed green.
Outside CI a skip stays a skip: a developer without Chromium can still run the rest.

tests/conftest.py loads this plugin for the suite; tests/test_ci_skips.py runs it over small suites.
"""

from __future__ import annotations

import os

import pytest

# Skips that are right even with every tool installed: the environment decides what applies. The key is
# the skip's reason, exactly; the value says why it is no missing tool. Anything else fails in CI.
ALLOWED_SKIPS: dict[str, str] = {
    "this interpreter is the runtime's": (
        "tests/deploy/test_invoke.py shows that a Python other than the runtime's 3.12 is refused; a suite "
        "that itself runs on 3.12 has no other Python to show it with"
    ),
}


def ci_enabled() -> bool:
    """`CI` as CI services set it (GitHub, GitLab, ...: `true`); empty, `0`, `false` and `no` are off."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    """The reason a skip was given (`pytest.skip`, `skipif`, `importorskip`), without pytest's prefix."""
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


class SkipLedger:
    """Every skip of one session, and at its end, in CI, a failure for those not allowed."""

    def __init__(self) -> None:
        self.skips: dict[str, str] = {}  # node id -> reason, each test once

    def record(self, report: pytest.TestReport | pytest.CollectReport) -> None:
        if report.skipped and not hasattr(report, "wasxfail"):  # an xfail is reported as skipped
            self.skips.setdefault(report.nodeid, skip_reason(report))

    def unexpected(self) -> dict[str, str]:
        return {node: reason for node, reason in self.skips.items() if reason not in ALLOWED_SKIPS}

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self.record(report)  # a module-level importorskip or skip skips the whole module here

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.record(report)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if ci_enabled() and self.unexpected() and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        unexpected = self.unexpected()
        if not (ci_enabled() and unexpected):
            return
        terminalreporter.section("skips not allowed in CI", sep="=", red=True, bold=True)
        for node, reason in sorted(unexpected.items()):
            terminalreporter.line(f"SKIPPED {node}: {reason}")
        terminalreporter.line(
            f"{len(unexpected)} skipped with CI set: install what they need (`make test` does), or, if a "
            "skip is right whatever is installed, add its reason to ALLOWED_SKIPS (tests/support/ci_skips.py)"
        )


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(SkipLedger(), "ci-skips")
