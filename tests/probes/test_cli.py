"""The headless CLI: one JSON object on stdout with --json, one line on stderr and exit 2 on user errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cache import Payload, ResultStore, RunKey
from probes.cli import main

ROOT = Path(__file__).resolve().parents[2]


def run_cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_models_json_lists_the_embedded_model(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run_cli(capsys, "models", "--json")
    assert code == 0
    listing = json.loads(out)
    assert listing["embedded"]["name"] == "organism"
    assert any("--revision" in line for line in listing["how_to_name_others"])


def test_cache_list_export_delete(capsys: pytest.CaptureFixture, store_path: Path, tmp_path: Path) -> None:
    store = ResultStore(store_path)
    run = store.put(
        RunKey.build("induction", "1", {"model_id": "organism"}, {"seed": 0}),
        Payload(tables={"scores": pd.DataFrame({"head": [0, 1], "score": [0.2, 0.8]})}, summary={"best": 0.8}),
        duration_s=0.1,
    )
    code, out, _ = run_cli(capsys, "cache", "list", "--json")
    assert code == 0 and [row["run_id"] for row in json.loads(out)["runs"]] == [run.run_id]

    code, out, _ = run_cli(capsys, "cache", "export", run.run_id[:10], "--format", "parquet", "--out", str(tmp_path))
    assert code == 0
    assert pd.read_parquet(tmp_path / "scores.parquet")["score"].tolist() == [0.2, 0.8]
    assert json.loads((tmp_path / "run.json").read_text())["summary"] == {"best": 0.8}

    code, out, _ = run_cli(capsys, "cache", "delete", run.run_id, "--json")
    assert code == 0 and json.loads(out) == {"deleted": run.run_id}
    assert store.list_runs().empty


def test_unknown_run_is_one_line_on_stderr(capsys: pytest.CaptureFixture, store_path: Path) -> None:
    code, out, err = run_cli(capsys, "cache", "delete", "deadbeef")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ")


def test_module_entry_point_prints_exactly_one_json_object(store_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "probes", "models", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0
    assert len(completed.stdout.strip().splitlines()) == 1
    json.loads(completed.stdout)


def test_streamlit_config_listens_on_localhost_with_upload_limit() -> None:
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "localhost"
    assert 0 < config["server"]["maxUploadSize"] <= 50
