"""`python -m probes rw-fit` in a subprocess: the bounded fit with baseline, the four models and the best by AIC,
exit 2 with one line on stderr for every kind of bad CSV, and a constant curve as a result, not an error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEYS = {
    "alpha_beta",
    "baseline",
    "scale",
    "r2",
    "best_model",
    "models",
    "n_points",
    "n_items",
    "bounded",
    "meaning",
}


def rw_fit(tmp_path: Path, content: str, *extra: str) -> subprocess.CompletedProcess:
    path = tmp_path / "curve.csv"
    path.write_text(content)
    command = [sys.executable, "-m", "probes", "rw-fit", "--csv", str(path), "--n-items", "20", "--json", *extra]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_s_shaped_curve_is_bounded_and_best_fitted_by_the_logistic(tmp_path: Path) -> None:
    rates = (0.0, 0.0, 0.208, 0.292, 0.625, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0)  # the organism's curve (issue 15)
    done = rw_fit(tmp_path, "proportion,strength\n" + "".join(f"{i / 10},{r}\n" for i, r in enumerate(rates)))
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip().splitlines()) == 1
    out = json.loads(done.stdout)
    assert set(out) == KEYS and out["bounded"] is True and out["n_points"] == 11 and out["n_items"] == 20
    assert 0.0 <= out["baseline"] <= 1.0 and 0.0 <= out["scale"] <= 1.0  # the old fit reported c = 1.56
    assert out["best_model"] == "logistic" and "follows the majority of the context" in out["meaning"]
    assert set(out["models"]) == {"constant", "proportional", "rw", "logistic"}
    assert set(out["models"]["logistic"]["params"]) == {"b", "c", "k", "p0"}
    assert out["r2"] >= out["models"]["proportional"]["r2"] >= out["models"]["constant"]["r2"]
    aiccs = {name: model["aicc"] for name, model in out["models"].items()}
    assert min(aiccs, key=aiccs.get) == "logistic"


def test_constant_curve_is_a_result_with_best_model_constant(tmp_path: Path) -> None:
    done = rw_fit(tmp_path, "proportion,strength\n0,0.79\n0.25,0.79\n0.5,0.79\n1,0.79\n")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["best_model"] == "constant" and out["r2"] is None
    assert out["meaning"].startswith("no dependence on the share")
    assert out["models"]["constant"]["params"]["b"] == pytest.approx(0.79)


def test_strengths_outside_0_1_are_fitted_unbounded(tmp_path: Path) -> None:
    done = rw_fit(tmp_path, "proportion,strength\n0,-5\n0.25,10\n0.5,20\n0.75,30\n1,40\n")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["bounded"] is False and out["baseline"] < 0.0 and out["scale"] > 1.0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("proportion,strength\n0,0\n1,1\n", "at least 3 proportions"),
        ("proportion,strength\n", "at least 3 proportions"),
        ("proportion,strength\n0,0\n1.5,0.2\n1,1\n", "row 1: field 'proportion' = 1.5 is out of range"),
        ("proportion,strength\n0,0\n-0.1,0.2\n1,1\n", "row 1: field 'proportion' = -0.1 is out of range"),
        ("proportion,strength\n0,0\n0.5,abc\n1,1\n", "row 1: field 'strength' is not a number"),
        ("proportion,strength\n0,0\n0.5,\n1,1\n", "row 1: field 'strength' is not a number"),
        ("proportion,strength\n0,0\n0.5,1_0\n1,1\n", "row 1: field 'strength' is not a number"),
        ("proportion,strength\n0,0\n0.5,nan\n1,1\n", "row 1: field 'strength' is not a finite number"),
        ("proportion,strength\n0,0\nNaN,0.5\n1,1\n", "row 1: field 'proportion' is not a finite number"),
        ("proportion,strength\n0,0\n0.5,inf\n1,1\n", "row 1: field 'strength' is not a finite number"),
        ("proportion,strength\n0,0\n0.5,-Infinity\n1,1\n", "row 1: field 'strength' is not a finite number"),
        ("proportion,strength\n0,0\n0.5,1e999\n1,1\n", "row 1: field 'strength' is not a finite number"),
        ("", "is empty"),
        ("proportion,value\n0,1\n0.5,1\n1,1\n", "needs columns proportion,strength"),
        ("strength\n0\n1\n0.5\n", "needs columns proportion,strength"),
    ],
)
def test_bad_csv_exits_2_with_one_line_on_stderr(tmp_path: Path, content: str, message: str) -> None:
    done = rw_fit(tmp_path, content)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr


def test_n_items_below_one_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "ok.csv"
    path.write_text("proportion,strength\n0,0\n0.5,0.5\n1,1\n")
    command = [sys.executable, "-m", "probes", "rw-fit", "--csv", str(path), "--n-items", "0", "--json"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == "" and done.stderr.count("\n") == 1
    assert "--n-items must be at least 1" in done.stderr
