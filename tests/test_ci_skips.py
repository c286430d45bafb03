"""Skips in CI (tests/support/ci_skips.py): a small suite with a skip, run with and without `CI=true`."""

from __future__ import annotations

import pytest
from support.ci_skips import ALLOWED_SKIPS

pytest_plugins = ["pytester"]

ALLOWED_REASON = next(iter(ALLOWED_SKIPS))

SUITE_WITH_SKIPS = """
import pytest

def test_runs():
    assert True

@pytest.mark.skipif(True, reason="chromium is not installed")
def test_needs_a_browser():
    pass

def test_skips_inside():
    pytest.skip("no python3.12 for the runtime")

@pytest.mark.xfail(reason="a known bug, not a skip")
def test_known_bug():
    assert False
"""


def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str | None) -> pytest.RunResult:
    """The small suite under the plugin, with CI unset or set to `ci`."""
    if ci is None:
        monkeypatch.delenv("CI", raising=False)  # the outer run may itself be in CI
    else:
        monkeypatch.setenv("CI", ci)
    return pytester.runpytest("-p", "support.ci_skips", "-p", "no:cacheprovider")


def test_without_ci_a_skip_is_only_a_skip(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_suite=SUITE_WITH_SKIPS)
    result = run(pytester, monkeypatch, ci=None)
    result.assert_outcomes(passed=1, skipped=2, xfailed=1)
    assert result.ret == pytest.ExitCode.OK
    assert "skips not allowed in CI" not in result.stdout.str()


@pytest.mark.parametrize("ci", ["true", "1"])
def test_in_ci_a_skip_fails_the_run_and_is_listed_with_its_reason(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    pytester.makepyfile(test_suite=SUITE_WITH_SKIPS)
    result = run(pytester, monkeypatch, ci=ci)
    result.assert_outcomes(passed=1, skipped=2, xfailed=1)  # the tests themselves are unchanged
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*skips not allowed in CI*",
            "SKIPPED test_suite.py::test_needs_a_browser: chromium is not installed",
            "SKIPPED test_suite.py::test_skips_inside: no python3.12 for the runtime",
            "2 skipped with CI set: *",
        ]
    )
    assert "test_known_bug" not in result.stdout.str().split("skips not allowed in CI")[1]


def test_in_ci_a_module_skipped_at_collection_fails_the_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module-level importorskip skips the whole module while collecting: no test report at all."""
    pytester.makepyfile(
        test_export="""
        import pytest
        torch = pytest.importorskip("a_module_that_is_not_installed")

        def test_export():
            pass
        """
    )
    pytester.makepyfile(test_other="def test_other():\n    pass\n")
    result = run(pytester, monkeypatch, ci="true")
    result.assert_outcomes(passed=1, skipped=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["SKIPPED test_export.py: could not import 'a_module_that_is_not_installed': No module named *"]
    )


def test_in_ci_an_allowed_skip_passes(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(
        test_suite=f"""
        import pytest

        def test_runs():
            pass

        def test_by_design():
            pytest.skip({ALLOWED_REASON!r})
        """
    )
    result = run(pytester, monkeypatch, ci="true")
    result.assert_outcomes(passed=1, skipped=1)
    assert result.ret == pytest.ExitCode.OK
    assert "skips not allowed in CI" not in result.stdout.str()


@pytest.mark.parametrize("ci", ["", "false", "0"])
def test_ci_set_to_false_is_off(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    pytester.makepyfile(test_suite=SUITE_WITH_SKIPS)
    assert run(pytester, monkeypatch, ci=ci).ret == pytest.ExitCode.OK


def test_a_failing_run_stays_failed_and_still_lists_its_skips(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        test_suite="""
        import pytest

        def test_fails():
            assert False

        def test_skipped():
            pytest.skip("no chromium")
        """
    )
    result = run(pytester, monkeypatch, ci="true")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["SKIPPED test_suite.py::test_skipped: no chromium"])
