"""Guard: every probe's headline behaviour on the committed organism (`models/organism`), in one module.

A retrained organism that breaks a probe cannot land: each test states one acceptance line of the issues that
built the probes, measured with the probe's own default configuration (what the page and the CLI run):

* organism eval (issue 3): fact recall >= 0.9, context following >= 0.8, induction score >= 0.5, and the numbers
  recorded in `metrics.json` are the ones the committed weights give;
* induction scan: the top head's induction score >= 0.5, with the second half of the repeat predicted far better;
* steering (issue 15): a graded FlexAC dose-response in the calibrated strength unit, a harmless faithful side and a
  harmless matched-norm random vector, and prompt sets the tokenizer reads;
* poisoned context (issue 15): on the organism's own testbed the curve rises with the share of inappropriate items,
  starts below 0.1 at p = 0 and the testbed is readable;
* emergence (issue 15): the default repeat-task run of the split-head seed shows its phase change and copies.

About 70 s on 2 shared cores, most of it the emergence run (it trains its own small model, not the organism).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from probes import induction
from probes.induction import emergence
from probes.models import EMBEDDED_MODEL_DIR, ModelSpec, load_model
from probes.poisoned import CurveConfig
from probes.poisoned import run as run_curve
from probes.poisoned.testbed import EMBEDDED_TESTBED, load_testbed_file
from probes.steering import SweepConfig, VectorConfig, build_vectors, organism_prompt_sets, run_sweep

ORGANISM_TARGETS = {"fact_recall": 0.9, "context_following": 0.8, "induction_score_max": 0.5}
STRENGTHS = (-2.0, -1.0, 0.0, 1.0, 2.0)
SPLIT_HEAD_SEED = 1  # the emergence run whose copying is split over heads (top head 0.44)

pytestmark = pytest.mark.skipif(
    not (EMBEDDED_MODEL_DIR / "data" / "steering_prompts.json").is_file(), reason="the trained organism is absent"
)


@pytest.fixture(scope="module")
def organism():
    torch.set_num_threads(1)
    return load_model(ModelSpec(name=str(EMBEDDED_MODEL_DIR), device="cpu"))


# ------------------------------------------------------------------------------------------- organism eval


@pytest.fixture(scope="module")
def organism_metrics() -> dict:
    from probes.organism.evaluate import evaluate_folder

    return evaluate_folder(EMBEDDED_MODEL_DIR)


@pytest.mark.parametrize("metric", sorted(ORGANISM_TARGETS))
def test_organism_eval_meets_its_target(organism_metrics: dict, metric: str) -> None:
    assert organism_metrics[metric] >= ORGANISM_TARGETS[metric], organism_metrics


def test_recorded_metrics_are_the_committed_weights(organism_metrics: dict) -> None:
    recorded = json.loads((EMBEDDED_MODEL_DIR / "metrics.json").read_text())
    for name in ("fact_recall", "context_following", "induction_score_max", "loss"):
        assert organism_metrics[name] == pytest.approx(recorded[name], abs=1e-4), name


# ------------------------------------------------------------------------------------------ induction scan


def test_induction_scan_finds_an_induction_head(organism) -> None:
    summary = induction.run(organism, induction.ScanConfig()).summary()
    assert summary["best_induction"]["score"] >= 0.5, summary["best_induction"]
    assert summary["second_half_loss"] < 0.25 * summary["first_half_loss"], summary


# ---------------------------------------------------------------------------------------------- steering


@pytest.fixture(scope="module")
def steering_sweep(organism) -> dict:
    sets = organism_prompt_sets()
    vectors = build_vectors(organism, VectorConfig(), sets, "organism").vectors
    return run_sweep(organism, SweepConfig(strengths=STRENGTHS), vectors, sets).summary()


def by_strength(records: list[dict], metric: str) -> dict[float, float]:
    return {record["strength"]: record[metric] for record in records}


def test_steering_dose_response(steering_sweep: dict) -> None:
    faithful = by_strength(steering_sweep["rows"], "faithfulness")
    creative = by_strength(steering_sweep["rows"], "creativity")
    assert faithful[2.0] <= faithful[0.0] - 0.3, faithful
    assert abs(faithful[-2.0] - faithful[0.0]) <= 0.05, faithful
    assert creative[2.0] >= creative[0.0] + 0.2, creative
    assert faithful[2.0] < faithful[1.0] < faithful[0.0], faithful  # graded, not a cliff between 0 and +1


def test_steering_random_vector_is_harmless(steering_sweep: dict) -> None:
    noise = by_strength(steering_sweep["random_baseline"], "faithfulness")
    assert all(abs(noise[s] - noise[0.0]) <= 0.1 for s in STRENGTHS), noise


def test_steering_collapse_is_marked(steering_sweep: dict) -> None:
    assert steering_sweep["collapse"]["flexac"]["positive"] == 2.0, steering_sweep["collapse"]


def test_steering_prompt_sets_are_readable(steering_sweep: dict) -> None:
    assert steering_sweep["coverage"] >= 0.95 and steering_sweep["warnings"] == []


# -------------------------------------------------------------------------------------------- poisoned


@pytest.fixture(scope="module")
def poisoned_curve(organism) -> dict:
    return run_curve(organism, CurveConfig(), load_testbed_file(EMBEDDED_TESTBED)).summary()


def test_poisoned_curve_rises_from_near_zero(poisoned_curve: dict) -> None:
    rates = np.array([point["poisoned_rate"] for point in poisoned_curve["points"]])
    assert rates[0] < 0.1, rates
    assert rates[-1] >= 0.9, rates
    assert np.all(np.diff(rates) >= -0.05), rates  # rising, up to sampling noise of one item in 24
    assert np.corrcoef(np.arange(rates.size), rates)[0, 1] > 0.9, rates


def test_poisoned_testbed_is_readable(poisoned_curve: dict) -> None:
    assert poisoned_curve["coverage"] >= 0.95 and poisoned_curve["warnings"] == []


# ------------------------------------------------------------------------------------------- emergence


def test_default_emergence_run_shows_a_phase_change_and_in_context_copying() -> None:
    result = emergence.train(emergence.TrainConfig(seed=SPLIT_HEAD_SEED))
    final = result.history[-1]
    assert result.phase_metric == "layer_induction_total"
    assert result.phase_change_step is not None and 0 < result.phase_change_step < result.config.steps
    assert final["layer_induction_total"] >= 0.6, final
    assert final["loss_ratio"] <= 0.25, final
