"""`python -m probes steering vectors|sweep`: one JSON object, cached reruns, saved vectors, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from probes.cli import main
from probes.steering import SteeringVectors
from probes.tiny import default_words

WORDS = default_words(200)


@pytest.fixture
def prompts_file(tmp_path: Path) -> Path:
    data = {
        "faithful": [f"the {WORDS[i]} of {WORDS[i + 1]} is" for i in range(0, 20, 2)],
        "associative": [f"{WORDS[i + 100]} {WORDS[i]} , {WORDS[i + 1]} and" for i in range(0, 20, 2)],
        "associative_words": WORDS[100:140],
        "facts": [{"prompt": f"the {WORDS[i]} of {WORDS[i + 1]} is", "answer": WORDS[i + 50]} for i in range(0, 20, 2)],
    }
    path = tmp_path / "sets.json"
    path.write_text(json.dumps(data))
    return path


def run_json(capsys, argv: list[str]) -> dict:
    assert main([*argv, "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # exactly one JSON object
    return json.loads(out)


def sweep_args(model_dir: Path, prompts: Path) -> list[str]:
    return ["steering", "sweep", "--model", str(model_dir), "--device", "cpu", "--prompts", str(prompts),
            "--strengths=-1,0,2", "--n-facts", "4", "--max-new-tokens", "3"]  # fmt: skip


def test_sweep_prints_rows_random_baseline_and_layers_then_serves_from_cache(
    capsys, tiny_model_dir, prompts_file, store_path
):
    first = run_json(capsys, sweep_args(tiny_model_dir, prompts_file))
    assert [row["strength"] for row in first["rows"]] == [-1.0, 0.0, 2.0]
    assert [row["strength"] for row in first["random_baseline"]] == [-1.0, 0.0, 2.0]
    assert first["layers"] == [0, 1]
    assert first["creativity_metric"] == "associative_share"
    for row in first["rows"] + first["random_baseline"]:
        assert 0.0 <= row["faithfulness"] <= 1.0 and 0.0 <= row["creativity"] <= 1.0
    assert first["cached"] is False
    second = run_json(capsys, sweep_args(tiny_model_dir, prompts_file))
    assert second["cached"] is True and second["run_id"] == first["run_id"]
    assert second["rows"] == first["rows"]


def test_vectors_written_and_reused_by_sweep(capsys, tiny_model_dir, prompts_file, store_path, tmp_path):
    out = tmp_path / "vec"
    built = run_json(capsys, ["steering", "vectors", "--model", str(tiny_model_dir), "--device", "cpu",
                              "--prompts", str(prompts_file), "--layers", "1", "--out", str(out)])  # fmt: skip
    assert built["layers"] == [1]
    saved = SteeringVectors.from_files((out / "vector.safetensors").read_bytes(), (out / "vector.json").read_bytes())
    assert saved.layers == (1,) and saved.general.shape == (2, 64)
    swept = run_json(capsys, [*sweep_args(tiny_model_dir, prompts_file), "--vector", str(out / "vector.safetensors")])
    assert swept["layers"] == [1]
    assert swept["vector_run_id"] is None
    again = SteeringVectors.from_files((out / "vector.safetensors").read_bytes())
    assert torch.equal(again.general, saved.general)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--layers", "7"], "do not exist"),
        (["--strengths", "a,b"], "comma-separated numbers"),
        (["--facts", "/no/such/file.csv"], "No such file"),
    ],
)
def test_user_errors_exit_2_with_one_line(capsys, tiny_model_dir, prompts_file, store_path, extra, message):
    assert main([*sweep_args(tiny_model_dir, prompts_file), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error:") and message in err[-1]
