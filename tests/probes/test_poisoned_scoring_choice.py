"""Answer scoring choices (sum, per-token mean, calibrated): the arithmetic, the run key, and a length test."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
import torch

from cache.keys import RunKey
from probes.models import EMBEDDED_MODEL_DIR, ModelSpec, load_model
from probes.poisoned import NAME, VERSION, CurveConfig, ExploreConfig, ExploreInput, explore
from probes.poisoned.contexts import content_free_prompt
from probes.poisoned.scoring import DEFAULT_SCORING, SCORINGS, answer_scores
from probes.poisoned.testbed import EMBEDDED_TESTBED, load_testbed_file

IDENTITY = {"model_id": "organism", "revision": None}


def test_answer_scores_sum_mean_and_calibrated() -> None:
    in_context = np.array([[[-4.0, -1.0], [-9.0, -3.0]]])  # (1 set, 2 answers, [sum, mean])
    content_free = np.array([[-6.0, -8.0]])  # (1 set, 2 answers): summed log-probs with no context
    assert answer_scores(in_context, None, "sum").tolist() == [[-4.0, -9.0]]
    assert answer_scores(in_context, None, "mean").tolist() == [[-1.0, -3.0]]
    assert answer_scores(in_context, content_free, "calibrated").tolist() == [[2.0, -1.0]]
    with pytest.raises(ValueError, match="content-free"):
        answer_scores(in_context, None, "calibrated")
    with pytest.raises(ValueError, match="Unknown scoring"):
        answer_scores(in_context, None, "median")


def test_the_scoring_choice_is_part_of_the_run_key() -> None:
    keys = {RunKey.build(NAME, VERSION, IDENTITY, CurveConfig(scoring=s), "d").run_id() for s in SCORINGS}
    assert len(keys) == len(SCORINGS)
    assert asdict(CurveConfig())["scoring"] == DEFAULT_SCORING == "calibrated"


def test_content_free_prompt_keeps_the_template_without_information() -> None:
    prompt = content_free_prompt("Where was Vobil born?")
    assert "N/A" in prompt and prompt.endswith("Answer:") and "Where was Vobil born?" in prompt


@pytest.mark.skipif(not (EMBEDDED_MODEL_DIR / "config.json").is_file(), reason="the trained organism is absent")
def test_calibrated_scoring_is_fooled_less_by_a_longer_answer_than_the_sum() -> None:
    """Clean contexts (p = 0) that support the reference, with the reference written three times over: the summed
    log-prob lets the short claim win on length; calibration removes part of that (docstring of scoring.py)."""
    torch.set_num_threads(1)
    model = load_model(ModelSpec(name=str(EMBEDDED_MODEL_DIR), device="cpu"))
    items = load_testbed_file(EMBEDDED_TESTBED).items[::24][:8]
    claim_wins = {}
    for scoring in ("sum", "calibrated"):
        cfg = ExploreConfig(n_inappropriate=0, generate=False, scoring=scoring)
        claim_wins[scoring] = sum(
            explore(model, cfg, ExploreInput(it.question, it.appropriate, (), (" ".join([it.reference] * 3), it.claim)))
            .logodds > 0
            for it in items
        )  # fmt: skip
    assert claim_wins["sum"] == len(items), claim_wins
    assert claim_wins["calibrated"] < claim_wins["sum"], claim_wins
