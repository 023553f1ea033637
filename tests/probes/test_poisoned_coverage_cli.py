"""`poisoned validate --model` and `poisoned curve` report how much of the testbed the model can read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from probes.cli import main
from probes.models import EMBEDDED_MODEL_DIR

OWN_TESTBED = EMBEDDED_MODEL_DIR / "data" / "testbed.json"
PUBLIC_POOL = Path(__file__).resolve().parents[3] / "shared" / "data" / "rw-testbed" / "fakenews_output.json"


def run_cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, dict, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, json.loads(out) if code == 0 else {}, err


def test_validate_with_a_model_reports_full_coverage_of_the_organisms_testbed(capsys) -> None:
    code, report, err = run_cli(
        capsys, "poisoned", "validate", "--testbed", str(OWN_TESTBED), "--model", "organism", "--json"
    )
    assert code == 0
    assert report["coverage"] >= 0.95 and report["warnings"] == []
    assert "warning" not in err


def test_validate_without_a_model_reports_no_coverage(capsys) -> None:
    code, report, _ = run_cli(capsys, "poisoned", "validate", "--testbed", str(OWN_TESTBED), "--json")
    assert code == 0 and "coverage" not in report


@pytest.mark.skipif(not PUBLIC_POOL.is_file(), reason="the public testbed pools live in ../shared (absent in a clone)")
def test_a_public_pool_the_organism_cannot_read_is_warned_about_in_json_and_on_stderr(capsys) -> None:
    code, report, err = run_cli(
        capsys, "poisoned", "validate", "--testbed", str(PUBLIC_POOL), "--model", "organism", "--json"
    )
    assert code == 0
    assert report["coverage"] < 0.5
    assert len(report["warnings"]) == 1 and "cannot read this testbed" in report["warnings"][0]
    assert err.count("warning:") == 1


def test_curve_json_carries_coverage(capsys, tmp_path) -> None:
    code, report, _ = run_cli(
        capsys,
        "poisoned",
        "curve",
        "--n-items",
        "4",
        "--steps",
        "2",
        "--max-items",
        "4",
        "--bootstrap",
        "0",
        "--db",
        str(tmp_path / "r.duckdb"),
        "--json",
    )
    assert code == 0
    assert report["coverage"] >= 0.95 and report["warnings"] == []
