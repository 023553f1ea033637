"""The benchmark runner: the JSON shape of a real quick run (cache case only), target marking, failure isolation.

The full benchmark is not part of the test suite (see bench/README.md); these stay under ~30 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from bench import run as bench_run

REPO_ROOT = Path(__file__).resolve().parent.parent


def _assert_rows_shape(report: dict) -> None:
    assert isinstance(report["rows"], list)
    for row in report["rows"]:
        assert isinstance(row["name"], str)
        for field in ("ratio", "probe_s", "baseline_s"):
            assert isinstance(row[field], float), (field, row)


def test_quick_cache_run_prints_one_json_object(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--json", "--only", "cache", "--models", "organism",
         "--out", str(tmp_path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)  # exactly one JSON object, nothing else on stdout
    _assert_rows_shape(report)
    assert report["errors"] == [], report["errors"]
    names = [row["name"] for row in report["rows"]]
    assert any(name.startswith("cache serve vs recompute") for name in names), names
    serve = report["rows"][0]
    assert serve["target"] == ">= 50" and serve["target_status"] in {"met", "missed"}
    assert serve["probe_s"] < serve["baseline_s"]  # serving a stored run beats recomputing it
    assert report["machine"]["cpu_count"] and report["machine"]["torch"] and report["machine"]["device"]
    assert report["date"] and report["total_s"] > 0
    assert json.loads((tmp_path / "bench.json").read_text())["rows"] == report["rows"]
    markdown = (tmp_path / "bench.md").read_text()
    assert "| case | model | row |" in markdown and "cache serve vs recompute" in markdown
    assert "| case | model | row |" in done.stderr  # the table is printed on stderr


def test_every_quick_probe_case_runs_without_errors(tmp_path: Path) -> None:
    """Each probe's benchmark still runs against the probe's current interfaces (about 30 s on 2 cores)."""
    done = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--json", "--no-browser", "--models", "organism",
         "--only", "induction", "steering", "poisoned", "spectra", "--out", str(tmp_path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    _assert_rows_shape(report)
    assert report["errors"] == [], report["errors"]
    assert {row["case"] for row in report["rows"]} == {"induction", "steering", "poisoned", "spectra"}


@pytest.mark.parametrize(
    ("ratio", "target", "status"),
    [(1.2, "<= 1.5", "met"), (1.6, "<= 1.5", "missed"), (0.9, ">= 0.8", "met"), (0.7, ">=0.8x", "missed"),
     (60.0, ">= 50", "met"), (1.0, None, None), (1.0, "fast", "unparsed")],
)  # fmt: skip
def test_target_status(ratio: float, target: str | None, status: str | None) -> None:
    assert bench_run.target_status(ratio, target) == status


def test_a_failing_case_becomes_an_error_entry_and_the_others_still_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def good_rows(model, model_label, quick):
        return [{"name": "good", "ratio": 1.0, "probe_s": 0.5, "baseline_s": 0.5, "target": "<= 1.5"}]

    def boom_rows(model, model_label, quick):
        raise ValueError("probe exploded")

    def bad_rows(model, model_label, quick):
        return [{"name": "bad", "ratio": float("nan"), "probe_s": 1.0, "baseline_s": 1.0}, "not a row"]

    cases = {"aaa_boom": boom_rows, "bbb_bad": bad_rows, "ccc_good": good_rows}
    for name, rows in cases.items():
        monkeypatch.setitem(sys.modules, f"bench.cases.{name}", types.SimpleNamespace(rows=rows))
    monkeypatch.setattr(bench_run, "available_cases", lambda: sorted(cases))
    fake_model = types.SimpleNamespace()
    monkeypatch.setattr("bench.models.load", lambda label, device="auto", dtype="auto": (fake_model, None))
    monkeypatch.setattr(
        "bench.models.describe_model",
        lambda model, spec: {"name": "fake", "parameters": 1, "device": "cpu", "dtype": "float32",
                             "n_layers": 1, "d_model": 1},
    )  # fmt: skip

    code = bench_run.main(["--quick", "--json", "--models", "organism", "--out", str(tmp_path)])

    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in report["rows"]] == ["good [organism]"]
    assert report["rows"][0]["target_status"] == "met"
    errors = {entry["case"]: entry["error"] for entry in report["errors"]}
    assert "probe exploded" in errors["aaa_boom"]
    assert errors["bbb_bad"].startswith("schema:")
    assert set(report["case_seconds"]) == {f"{name} [organism]" for name in cases}


def test_comparison_rows_alternate_probe_and_baseline() -> None:
    from bench.timing import comparison_row

    calls: list[str] = []
    row = comparison_row("alternation", lambda: calls.append("p"), lambda: calls.append("b"), repeats=3, target="<= 2")
    assert calls[:8] == ["p", "b"] * 4  # one warm-up of each, three interleaved rounds (then the memory peaks)
    assert row["repeats"] == 3 and row["probe_s"] > 0 and row["baseline_s"] > 0
