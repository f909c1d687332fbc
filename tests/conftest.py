"""Suite-wide configuration: a reproducible hypothesis profile and no silent skips in CI.

* Hypothesis runs with the ``"bregmod"`` profile (derandomized, fixed number of examples, no
  deadline, no example database), so a run is the same on every machine; tests that pass their
  own ``settings(...)`` inherit it. ``HYPOTHESIS_PROFILE=dev`` selects hypothesis' own
  randomized default for exploratory runs.
* When the environment variable ``CI`` is set (``.ci/run`` sets it), a skipped test is a
  failure unless its reason names a missing optional dependency: pytest's ``importorskip``
  ("could not import ...") or a reason containing ``"optional dependency"``.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

settings.register_profile(
    "bregmod", derandomize=True, max_examples=50, deadline=None, database=None
)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "bregmod"))

#: Skip reasons accepted in CI: a missing optional dependency, said as such.
ALLOWED_SKIP_REASONS = ("could not import", "optional dependency")


def skip_reason(report) -> str:
    """The reason text of a skipped report (``longrepr`` is (file, line, reason) for skips)."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def silent_skip(report) -> bool:
    """Whether ``report`` is a skip that CI must not accept (see the module docstring)."""
    if not os.environ.get("CI") or not report.skipped or hasattr(report, "wasxfail"):
        return False
    reason = skip_reason(report)
    return not any(allowed in reason for allowed in ALLOWED_SKIP_REASONS)


def _fail_silent_skip(report) -> None:
    if silent_skip(report):
        reason = skip_reason(report)
        report.outcome = "failed"
        report.longrepr = (
            f"skipped in CI ({reason}); a skip in CI must name a missing optional dependency "
            f"(reason containing one of {ALLOWED_SKIP_REASONS})"
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_silent_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_silent_skip(outcome.get_result())
