"""The run history's Bundle action: it builds the run's reproducible bundle in memory and offers it as a zip."""

from __future__ import annotations

import importlib.util
import io
import json
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import probes.bundle as pure
from probes.cli import main

ROOT = Path(__file__).resolve().parents[2]


def open_run(run_id: str) -> AppTest:
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    app.selectbox(key="history_open").set_value(run_id).run()
    assert not app.exception
    return app


def stored_scan(capsys: pytest.CaptureFixture) -> str:
    assert main(["induction", "scan", "--seq-len", "8", "--n-seqs", "2", "--json"]) == 0
    return json.loads(capsys.readouterr().out)["run_id"]


def test_bundle_button_offers_the_zip(store_path: Path, capsys: pytest.CaptureFixture) -> None:
    run_id = stored_scan(capsys)
    app = open_run(run_id)
    assert not [b for b in app.get("download_button") if b.proto.label == "Download bundle"]
    app.button(key="history_bundle").click().run()
    assert not app.exception, app.exception
    [_] = [b for b in app.get("download_button") if b.proto.label == "Download bundle"]
    name, data, messages = app.session_state[f"history_bundle_{run_id}"]
    assert name == f"induction-{run_id[:12]}"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = {item.split("/", 1)[1]: archive.read(item) for item in archive.namelist()}
    pure.verify_manifest(files)
    assert "command.txt" in files and "tables/head_scores.parquet" in files
    assert [warning.value for warning in app.warning] == messages
    if importlib.util.find_spec("kaleido") is not None and pure.browser_path() is not None:
        assert messages == [] and any(name.endswith(".png") for name in files)  # rendered inside the page's run


def test_bundle_without_a_browser_is_a_warning(
    store_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_browser(figures, names):
        raise RuntimeError("no browser could be started")

    monkeypatch.setattr(pure, "static_export", no_browser)
    run_id = stored_scan(capsys)
    app = open_run(run_id)
    app.button(key="history_bundle").click().run()
    assert not app.exception and not app.error
    assert any("PNG/SVG figures skipped" in warning.value for warning in app.warning)
    assert [b for b in app.get("download_button") if b.proto.label == "Download bundle"]
