"""Stored steering and poisoned runs come back as their probe's own typed result (`wiring.result_of`): the rebuilt
result gives the stored tables, summary and files again, and the attributes the pages read."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from cache import ResultStore
from probes import poisoned, steering, wiring
from probes.coverage import Coverage
from probes.models import ModelSpec
from probes.poisoned import CurveConfig, CurveResult, ExploreConfig, ExploreInput, ExploreResult, load_testbed
from probes.steering import LadderConfig, LadderResult, SweepConfig, SweepResult, VectorConfig, VectorResult
from probes.steering.metrics import derived_vocabulary
from tests.probes.test_poisoned import tiny_testbed_items
from tests.probes.test_steering import WORDS, tiny_sets


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> ResultStore:
    return ResultStore(tmp_path_factory.mktemp("from-stored") / "r.duckdb")


@pytest.fixture(scope="module")
def compute(store, tiny_model, tiny_model_dir):
    """Run a request through the real store (the session's tiny model, not a fresh load) -> the stored run."""
    spec = ModelSpec(str(tiny_model_dir), device="cpu")

    def stored(name: str, cfg, inputs):
        run = wiring.run(store, wiring.Request(name, cfg, spec, inputs), load=lambda _: tiny_model)
        assert not run.cached and run.tables  # read back from the database: Parquet tables, JSON summary
        return run

    return stored


def assert_round_trip(rebuilt, run) -> None:
    """The rebuilt result gives the stored tables, summary (NaN-aware: compared as canonical JSON) and files."""
    tables = rebuilt.to_tables()
    assert list(tables) == list(run.tables)
    for name, frame in run.tables.items():
        pd.testing.assert_frame_equal(tables[name], frame)
    assert json.dumps(rebuilt.summary(), sort_keys=True) == json.dumps(run.summary, sort_keys=True)
    assert (rebuilt.files() if hasattr(rebuilt, "files") else {}) == run.files


@pytest.fixture(scope="module")
def vector_run(compute, tiny_model):
    sets = tiny_sets().with_target_samples((f"{WORDS[120]} {WORDS[121]} and", f"{WORDS[122]} , {WORDS[123]}"))
    cfg = VectorConfig(top_n_pairs=20).resolved(tiny_model.cfg.n_layers)
    return compute(steering.VECTORS_NAME, cfg, sets)


def test_vector_run_rebuilds_vectors_tables_and_files(vector_run) -> None:
    result = wiring.result_of(vector_run)
    assert isinstance(result, VectorResult)
    assert_round_trip(result, vector_run)
    assert result.vectors.task is not None and result.vectors.layers == tuple(vector_run.config["layers"])
    assert result.vectors.metadata["unit"] == "centroid" and set(result.vectors.metadata["output_shift"]) == {
        "1.0",
        "2.0",
    }
    assert list(result.per_layer["layer"]) == list(range(result.vectors.general.shape[0]))
    assert result.vectors.to_safetensors() == vector_run.files["vector.safetensors"]
    with pytest.raises(ValueError, match="vector.safetensors"):
        VectorResult.from_stored(vector_run.tables, vector_run.summary, {})


def test_sweep_run_rebuilds_rows_collapse_unit_and_coverage(compute, vector_run) -> None:
    vectors, sets = wiring.result_of(vector_run).vectors, tiny_sets()
    cfg = SweepConfig(
        strengths=(-1.0, 0.0, 2.0), n_facts=4, max_new_tokens=3, n_diversity_prompts=2, n_diversity_samples=2
    ).resolved(vectors.layers)
    run = compute(steering.NAME, cfg, wiring.SweepInputs(vectors, sets))
    result = wiring.result_of(run)
    assert isinstance(result, SweepResult)
    assert_round_trip(result, run)
    assert result.layers == vectors.layers and result.creativity_metric == "associative_share"
    assert result.unit == "centroid" and result.strength_unit == run.summary["strength_unit"]
    assert set(result.collapse_of()) >= {"positive", "negative"} and result.collapse == run.summary["collapse"]
    assert sorted(result.rows["direction"].unique()) == ["flexac", "random"]
    assert result.coverage.share_known == pytest.approx(51 / 52) and result.coverage.unknown_examples == ("and",)
    assert result.coverage.n_words is None and result.coverage.has_unknown_token  # not in the summary / implied
    assert result.warnings == [] == run.summary["warnings"]


def test_ladder_run_rebuilds_generations_by_strength(compute, vector_run) -> None:
    vectors, sets = wiring.result_of(vector_run).vectors, tiny_sets()
    vocabulary = frozenset(w.lower() for w in sets.associative_words) or derived_vocabulary(
        sets.faithful, sets.associative
    )
    cfg = LadderConfig(prompt=sets.facts[0].prompt, strengths=(-1.0, 1.0, 2.0), layers=vectors.layers, max_new_tokens=3)
    run = compute(steering.LADDER_NAME, cfg, wiring.LadderInputs(vectors, frozenset(vocabulary)))
    result = wiring.result_of(run)
    assert isinstance(result, LadderResult)
    assert_round_trip(result, run)
    assert list(result.generations["strength"]) == [-1.0, 0.0, 1.0, 2.0]  # strength 0 always included
    at_two = run.tables["generations"].set_index("strength").loc[2.0]
    assert result.at(2).equals(at_two) and isinstance(result.at(0.0)["text"], str)


@pytest.mark.parametrize("positions", [("last", "first"), ("spread",)])
def test_curve_run_rebuilds_tables_fit_settings_and_coverage(compute, positions) -> None:
    testbed = load_testbed(json.dumps(tiny_testbed_items()).encode(), "tiny_output.json")
    cfg = CurveConfig(
        n_items=6,
        proportion_steps=3,
        positions=positions,
        max_items_per_category=2,
        strength="choice_probability",
        n_bootstrap=10,
        n_generated=1,
        max_new_tokens=3,
    )
    run = compute(poisoned.NAME, cfg, testbed)
    result = wiring.result_of(run)
    assert isinstance(result, CurveResult)
    assert_round_trip(result, run)
    assert result.config is None  # the payload does not hold the whole config; the settings it does hold:
    assert (result.positions, result.position, result.strength, result.scoring, result.n_items_requested) == (
        positions,
        positions[0],
        "choice_probability",
        "calibrated",
        6,
    )
    assert result.rw_fit == run.summary["rw_fit"] and result.rw_fit["alpha_beta_low"] is not None
    assert result.testbed_items == 4 and result.n_items_used == 6 and result.notice == ""
    assert result.groups[0] == ("all", positions[0]) and len(result.groups) == 3 * len(positions)
    assert result.best_models[("all", positions[0])] == result.rw_fit["best_model"]
    assert len(result.examples) == 1 and result.coverage.share_known == 1.0 and result.warnings == []
    assert result.coverage.has_unknown_token is None  # all words known: the summary cannot tell


def test_a_curve_result_without_its_config_needs_the_settings() -> None:
    empty = pd.DataFrame()
    with pytest.raises(ValueError, match="without its config"):
        CurveResult(None, empty, empty, empty, empty, empty, 6, "", [], Coverage(1.0, 3, (), False))


def test_explore_run_rebuilds_winner_logodds_and_tables(compute) -> None:
    data = ExploreInput(
        question="the bada of dada is ?",
        appropriate=("dada is gaga .", "the bada of dada is gaga ."),
        inappropriate=("dada is kaka .",),
        candidates=("dada is gaga .", "dada is kaka ."),
    )
    cfg = ExploreConfig(n_inappropriate=2, position="first", max_new_tokens=3, scoring="sum")
    run = compute(poisoned.EXPLORE_NAME, cfg, data)
    result = wiring.result_of(run)
    assert isinstance(result, ExploreResult)
    assert_round_trip(result, run)
    assert result.logodds == run.summary["logodds"] and result.scoring == "sum"
    assert result.winner.candidate == run.summary["winner"] and result.winner.role in {"reference", "claim"}
    assert result.prompt == run.summary["prompt"] and isinstance(result.generated, str)
    assert list(result.segments["inappropriate"]) == [True, True, False, False]
    assert torch.isfinite(torch.tensor(result.segments["attribution"].to_numpy())).all()
