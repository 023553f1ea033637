"""One request, one key, for every probe a page runs by default (issue 20): what the CLI computed with its default
options, the page (with its default widgets, on the same database) serves from the cache instead of recomputing."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from probes.cli import main
from probes.models import EMBEDDED_MODEL_DIR
from tests.pages.test_steering_page import APP, TIMEOUT

pytestmark = pytest.mark.skipif(not (EMBEDDED_MODEL_DIR / "config.json").is_file(), reason="the organism is absent")
CASES = {
    "induction scan": (["induction", "scan", "--json"], "pages/induction.py"),
    "poisoned curve": (["poisoned", "curve", "--json"], "pages/poisoned.py"),
    "spectra memory": (["spectra", "memory", "--json"], "pages/spectra.py"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_page_serves_what_the_cli_computed_with_defaults(case: str, store_path, capsys) -> None:
    argv, page = CASES[case]
    assert main(argv) == 0
    run_id = json.loads(capsys.readouterr().out)["run_id"]
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    shown = [caption.value for caption in at.caption if f"Run `{run_id[:12]}`" in caption.value]
    assert shown and "served from the cache" in shown[0], [caption.value for caption in at.caption]
