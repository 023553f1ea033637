"""Two dashboard sessions on one shared model (issue 20): while one session steers, another session's scan is the
unsteered scan, exactly. Both sessions run in this process, so they share `st.cache_resource`'s loaded organism as
two browser sessions do; the steering session keeps its hooks attached for its whole sweep."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cache import ResultStore
from probes.induction import scores
from probes.models import EMBEDDED_MODEL_DIR, ModelSpec, load_model
from probes.wiring import Request, lookup
from tests.pages.test_steering_page import APP, TIMEOUT

pytestmark = pytest.mark.skipif(
    not (EMBEDDED_MODEL_DIR / "data" / "steering_prompts.json").is_file(), reason="the trained organism is absent"
)
SEEDS = (101, 102, 103)  # scan configs no other test stores, so each scan is computed while the other session steers


def session(**state) -> AppTest:
    """A session opened on the home page (run serially: only the probe pages' work runs at the same time)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    return at


def steer_in_background(at: AppTest) -> tuple[threading.Thread, list[BaseException]]:
    """The steering page with a sweep no other test stores, so it is computed with its hooks on."""
    errors: list[BaseException] = []

    def steer() -> None:
        try:
            at.switch_page("pages/steering.py").run()
            assert not at.exception, at.exception
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    thread = threading.Thread(target=steer)
    thread.start()
    return thread, errors


def test_a_scan_beside_a_steering_session_is_the_unsteered_scan(store_path) -> None:
    reference_model = load_model(ModelSpec(name=str(EMBEDDED_MODEL_DIR), device="cpu"))
    for number, seed in enumerate(SEEDS):
        cfg = scores.ScanConfig(seed=seed)
        expected = scores.run(reference_model, cfg).scores
        steering = session(steering_n_facts=40 + number, steering_sweep="-2,-1,0,1,2,3,4")
        scan = session(induction_seed=seed)
        thread, errors = steer_in_background(steering)
        scan.switch_page("pages/induction.py").run()
        thread.join(timeout=TIMEOUT)
        assert not thread.is_alive() and not errors, errors
        assert not scan.exception, scan.exception
        stored = lookup(ResultStore(store_path), Request(scores.NAME, cfg, ModelSpec(name="organism")))
        assert stored is not None, "the page did not store the scan"
        table = stored.tables["head_scores"].sort_values(["layer", "head"])
        for name in ("induction", "previous_token", "duplicate_token"):
            np.testing.assert_array_equal(table[name].to_numpy(), expected[name].ravel(), err_msg=name)
