"""The suite's own rules (tests/conftest.py): a reproducible hypothesis profile, and a skip in
CI is a failure unless it names a missing optional dependency."""

from __future__ import annotations

import os
from types import SimpleNamespace

import conftest
import pytest
from hypothesis import settings


def report(reason: str, **extra):
    return SimpleNamespace(skipped=True, longrepr=("test_x.py", 3, f"Skipped: {reason}"),
                           **extra)


def test_hypothesis_runs_the_fixed_profile():
    profile = settings.get_profile("bregmod")
    assert profile.derandomize and profile.database is None
    assert profile.deadline is None and profile.max_examples == 50
    if "HYPOTHESIS_PROFILE" not in os.environ:  # the default (CI): loaded for every test
        assert settings.default.derandomize and settings.default.database is None


@pytest.mark.parametrize(
    ("reason", "silent"),
    [
        ("the bregmod console script is not installed", True),
        ("not wanted today", True),
        ("could not import 'mkdocs': No module named 'mkdocs'", False),
        ("needs torch (optional dependency)", False),
    ],
)
def test_a_skip_in_ci_must_name_a_missing_optional_dependency(monkeypatch, reason, silent):
    monkeypatch.setenv("CI", "true")
    assert conftest.silent_skip(report(reason)) is silent
    monkeypatch.delenv("CI")
    assert conftest.silent_skip(report(reason)) is False


def test_silent_skip_becomes_a_failure_and_xfail_stays(monkeypatch):
    monkeypatch.setenv("CI", "1")
    skipped = report("not wanted today")
    skipped.outcome = "skipped"
    conftest._fail_silent_skip(skipped)
    assert skipped.outcome == "failed" and "skipped in CI" in skipped.longrepr
    assert not conftest.silent_skip(report("known bug", wasxfail="known bug"))
