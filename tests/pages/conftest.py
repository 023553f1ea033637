"""Page tests run background jobs inline (in the script's thread), so a clicked start button has stored its run by
the time the script ends; tests/probes/test_jobs.py and tests/e2e cover the worker processes."""

from __future__ import annotations

import pytest

from probes.jobs import RUNNER_ENV


@pytest.fixture(autouse=True)
def inline_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RUNNER_ENV, "inline")
