"""Steered poisoned curves: a stored FlexAC vector applied while the testbed is scored (probe, key, CLI)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from cache import ResultStore
from probes import wiring
from probes.cli import main
from probes.models import ModelSpec
from probes.poisoned import NAME, CurveConfig, load_testbed, run
from probes.poisoned.probe import Steer, SteeredTestbed
from probes.steering import SteeringVectors, VectorConfig, build_vectors
from probes.tiny import save_tiny_model
from tests.probes.test_poisoned import tiny_testbed_items
from tests.probes.test_steering import tiny_sets

SMALL = CurveConfig(n_items=6, proportion_steps=3, max_items_per_category=2, n_bootstrap=0)


@pytest.fixture(scope="module")
def testbed():
    return load_testbed(json.dumps(tiny_testbed_items()).encode(), "tiny_output.json")


@pytest.fixture(scope="module")
def vectors(tiny_model, tiny_model_dir) -> SteeringVectors:
    return build_vectors(tiny_model, VectorConfig(), tiny_sets(), str(tiny_model_dir)).vectors


def steered(testbed, vectors: SteeringVectors, strength: float) -> SteeredTestbed:
    return SteeredTestbed(testbed, Steer(vectors, strength))


def test_strength_zero_is_exactly_the_unsteered_curve(tiny_model, testbed, vectors) -> None:
    plain = run(tiny_model, SMALL, testbed)
    zero = run(tiny_model, SMALL, steered(testbed, vectors, 0.0))
    np.testing.assert_array_equal(zero.scores["logodds"].to_numpy(), plain.scores["logodds"].to_numpy())
    assert zero.points == plain.points
    assert plain.steer is None and "steer" not in plain.summary()
    assert zero.summary()["steer"]["strength"] == 0.0 and zero.steer["positions"] == "all"


def test_a_nonzero_strength_changes_the_log_odds_on_both_scoring_paths(tiny_model, testbed, vectors) -> None:
    plain = run(tiny_model, SMALL, testbed).scores["logodds"].to_numpy()
    shared = run(tiny_model, SMALL, steered(testbed, vectors, 2.0)).scores["logodds"].to_numpy()
    full = run(tiny_model, replace(SMALL, share_prompt=False), steered(testbed, vectors, 2.0)).scores
    assert np.abs(shared - plain).max() > 1e-3
    # every position is steered, so the KV-cache path and the full-sequence path see the same hooks
    np.testing.assert_allclose(shared, full["logodds"].to_numpy(), atol=1e-4)
    toward_faithful = run(tiny_model, SMALL, steered(testbed, vectors, -2.0)).scores["logodds"].to_numpy()
    assert np.abs(toward_faithful - shared).max() > 1e-3


def test_calibrated_content_free_passes_are_steered_too(tiny_model, testbed, vectors) -> None:
    plain = run(tiny_model, SMALL, testbed).scores
    pushed = run(tiny_model, SMALL, steered(testbed, vectors, 2.0)).scores
    assert np.abs(pushed["logp_claim_free"].to_numpy() - plain["logp_claim_free"].to_numpy()).max() > 1e-4


def test_the_key_holds_vector_and_strength_and_is_unchanged_without_one(tiny_model_dir, testbed, vectors) -> None:
    spec = ModelSpec(name=str(tiny_model_dir), device="cpu")
    plain = wiring.Request(NAME, SMALL, spec, testbed)
    assert plain.input_digest() == testbed.digest  # what the registry digested before steering existed
    assert wiring.Request(NAME, SMALL, spec, SteeredTestbed(testbed)).key() == plain.key()
    other = SteeringVectors(vectors.general * 0.5, vectors.layers, None, vectors.metadata)
    keys = {
        wiring.Request(NAME, SMALL, spec, steered(testbed, v, s)).key().run_id()
        for v in (vectors, other)
        for s in (-2.0, 0.0, 2.0)
    }
    assert len(keys) == 6 and plain.key().run_id() not in keys
    minus_zero = wiring.Request(NAME, SMALL, spec, steered(testbed, vectors, -0.0)).key()
    assert minus_zero == wiring.Request(NAME, SMALL, spec, steered(testbed, vectors, 0.0)).key()


def test_a_vector_of_another_model_is_refused_and_nothing_is_stored(
    tiny_model_dir, testbed, vectors, store_path, tmp_path
) -> None:
    store = ResultStore(store_path)
    spec = ModelSpec(name=str(tiny_model_dir), device="cpu")
    renamed = SteeringVectors(vectors.general, vectors.layers, None, {**vectors.metadata, "model": "gpt2"})
    with pytest.raises(ValueError) as refused:
        wiring.run(store, wiring.Request(NAME, SMALL, spec, steered(testbed, renamed, 2.0)))
    assert str(refused.value).startswith("This steering vector was built on gpt2, not on the model in use")
    from probes.models import load_model

    wider_dir = save_tiny_model(tmp_path / "wider", n_embd=32)
    wider = build_vectors(load_model(ModelSpec(name=str(wider_dir), device="cpu")), VectorConfig(), tiny_sets(), "")
    with pytest.raises(ValueError, match="built for 2 layers x d_model 32; the model has 2 x 64"):
        wiring.run(store, wiring.Request(NAME, SMALL, spec, steered(testbed, wider.vectors, 2.0)))
    assert store.list_runs().empty


# ------------------------------------------------------------------------------------------------------- CLI


def run_json(capsys, argv: list[str]) -> dict:
    assert main([*argv, "--json"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    return json.loads(out)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    from tests.probes.test_steering_cli import WORDS

    sets = {
        "faithful": [f"the {WORDS[i]} of {WORDS[i + 1]} is" for i in range(0, 20, 2)],
        "associative": [f"{WORDS[i + 100]} {WORDS[i]} , {WORDS[i + 1]} and" for i in range(0, 20, 2)],
    }
    (tmp_path / "sets.json").write_text(json.dumps(sets))
    (tmp_path / "tiny_output.json").write_text(json.dumps(tiny_testbed_items()))
    return tmp_path / "sets.json", tmp_path / "tiny_output.json"


def curve_args(model_dir: Path, testbed: Path, db: Path) -> list[str]:
    return ["poisoned", "curve", "--model", str(model_dir), "--device", "cpu", "--testbed", str(testbed),
            "--n-items", "6", "--steps", "3", "--max-items", "2", "--bootstrap", "0", "--db", str(db)]  # fmt: skip


def test_cli_round_trip_vector_then_steered_curves(capsys, tiny_model_dir, files, tmp_path) -> None:
    prompts, testbed = files
    db = tmp_path / "runs.duckdb"
    built = run_json(capsys, ["steering", "vectors", "--model", str(tiny_model_dir), "--device", "cpu",
                              "--prompts", str(prompts), "--db", str(db)])  # fmt: skip
    vector_id = built["run_id"]
    plain = run_json(capsys, curve_args(tiny_model_dir, testbed, db))
    assert "steer" not in plain
    one = run_json(capsys, [*curve_args(tiny_model_dir, testbed, db), "--steer", vector_id[:8], "--strength", "2"])
    assert one["steer"]["vector_run_id"] == vector_id and one["steer"]["strength"] == 2.0
    assert one["run_id"] != plain["run_id"] and one["cached"] is False and one["testbed"]["items"] == 6
    several = run_json(capsys, [*curve_args(tiny_model_dir, testbed, db), "--steer", vector_id,
                                "--strength=-2", "--strength", "0", "--strength", "2"])  # fmt: skip
    assert several["steer"] == {"vector_run_id": vector_id, "strengths": [-2.0, 0.0, 2.0]}
    by_strength = {curve["steer"]["strength"]: curve for curve in several["curves"]}
    assert by_strength[2.0]["run_id"] == one["run_id"] and by_strength[2.0]["cached"] is True
    assert by_strength[0.0]["points"] == plain["points"]
    assert by_strength[0.0]["run_id"] != plain["run_id"]  # the key names the vector, even at strength 0
    measure = run_json(capsys, [*curve_args(tiny_model_dir, testbed, db), "--steer", vector_id[:12],
                                "--strength", "choice_probability", "--strength", "2"])  # fmt: skip
    assert measure["strength"] == "choice_probability" and measure["steer"]["strength"] == 2.0
    assert len(ResultStore(db).list_runs(probe=NAME)) == 5


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--steer", "0123456789ab", "--strength", "2"], "No stored run matches '0123456789ab'"),
        (["--steer", "abc", "--strength", "2"], "first 8 or more characters"),
        (["--strength", "2"], "name the vector with --steer"),
        (["--steer", "PLAIN", "--strength", "2"], "is a poisoned run, not a steering vector"),
        (["--steer", "PLAIN"], "needs at least one steering strength"),
        (["--steer", "PLAIN", "--strength", "two"], "got 'two'"),
    ],
)
def test_cli_bad_steering_input_is_one_line_and_exit_2(capsys, tiny_model_dir, files, tmp_path, extra, message) -> None:
    _, testbed = files
    db = tmp_path / "runs.duckdb"
    plain = run_json(capsys, curve_args(tiny_model_dir, testbed, db))["run_id"]
    argv = [*curve_args(tiny_model_dir, testbed, db), *[plain if a == "PLAIN" else a for a in extra]]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0], err
    assert len(ResultStore(db).list_runs()) == 1
