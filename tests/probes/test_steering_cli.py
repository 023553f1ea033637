"""`python -m probes steering vectors|sweep`: one JSON object, cached reruns, saved vectors, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from probes.cli import main
from probes.models import EMBEDDED_MODEL_DIR
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


ENGLISH_SETS = {  # the organism's registers around English words it never saw
    "faithful": ["fact: the weather in London is", "fact: my grandmother baked bread in", "fact: the violin sounds"],
    "associative": ["dream: the weather in London is", "dream: my grandmother baked bread in", "dream: the violin"],
    "facts": [{"prompt": "fact: the weather in London is", "answer": "rainy"}],
}


@pytest.mark.skipif(not (EMBEDDED_MODEL_DIR / "model.safetensors").is_file(), reason="the organism is absent")
def test_sweep_on_words_the_organism_cannot_read_warns_on_stderr(capsys, tmp_path, store_path):
    path = tmp_path / "english.json"
    path.write_text(json.dumps(ENGLISH_SETS))
    out = run_json(capsys, ["steering", "sweep", "--device", "cpu", "--prompts", str(path), "--strengths=0,1",
                            "--n-facts", "1", "--max-new-tokens", "2", "--no-random-baseline"])  # fmt: skip
    assert out["coverage"] < 0.8 and "London" in out["unknown_words"]
    assert len(out["warnings"]) == 1
    cached = main(["steering", "sweep", "--device", "cpu", "--prompts", str(path), "--strengths=0,1",
                   "--n-facts", "1", "--max-new-tokens", "2", "--no-random-baseline", "--json"])  # fmt: skip
    assert cached == 0
    err = capsys.readouterr().err
    assert f"warning: {out['warnings'][0]}" in err  # printed again when the run is served from the cache


def test_unit_option_reaches_the_vector(capsys, tiny_model_dir, prompts_file, store_path):
    args = ["steering", "vectors", "--model", str(tiny_model_dir), "--device", "cpu", "--prompts", str(prompts_file)]
    assert run_json(capsys, args)["metadata"]["unit"] == "centroid"
    residual = run_json(capsys, [*args, "--unit", "residual", "--relative-norm", "0.2"])["metadata"]
    assert residual["unit"] == "residual" and residual["relative_norm"] == 0.2


def test_default_requests_resolve_to_the_pages_configs_and_keys() -> None:
    """The CLI's default vector and sweep requests key the same runs as the page's (layers resolved first)."""
    from cache.keys import RunKey
    from probes.cli import build_parser
    from probes.cli.steering import sweep_config_from_args, vector_config_from_args
    from probes.models import ModelSpec, layer_count
    from probes.steering import NAME, VECTORS_NAME, VECTORS_VERSION, VERSION, SweepConfig, VectorConfig
    from probes.steering.vectors import default_layers

    args = build_parser().parse_args(["steering", "sweep"])
    n_layers = layer_count(ModelSpec(name="organism"))
    page_vector = VectorConfig(layers=default_layers(n_layers)).resolved(n_layers)
    cli_vector = vector_config_from_args(args)
    page_sweep = SweepConfig().resolved(page_vector.layers)
    cli_sweep = sweep_config_from_args(args).resolved(cli_vector.layers)
    identity = {"model_id": "organism"}
    for name, version, page, cli in ((VECTORS_NAME, VECTORS_VERSION, page_vector, cli_vector),
                                     (NAME, VERSION, page_sweep, cli_sweep)):  # fmt: skip
        cli_key, page_key = (RunKey.build(name, version, identity, c).run_id() for c in (cli, page))
        assert cli_key == page_key, name
    assert VectorConfig().resolved(n_layers).layers == default_layers(n_layers)
    assert VectorConfig(layers=(2, 0, 2)).resolved(n_layers).layers == (0, 2)
