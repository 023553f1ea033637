"""Reproducible run bundles: `cache bundle` writes every listed file with a valid manifest, `cache reproduce`
recomputes a run (from the store or a bundle) and matches it exactly on the CPU, the bundle's command gives the same
run id, a tampered bundle is one clear error, and the stored run is never changed."""

from __future__ import annotations

import importlib.util
import json
import shlex
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest

import probes.bundle as pure
from cache import Payload, ResultStore
from probes.cli import main

RUNS = {
    "induction": ["induction", "scan", "--seq-len", "8", "--n-seqs", "2", "--seed", "3"],
    "spectra-memory": ["spectra", "memory", "--k", "8", "--steps", "5", "--optimizers", "gd", "muon"],
    "poisoned": ["poisoned", "curve", "--n-items", "4", "--steps", "2", "--max-items", "2", "--bootstrap", "0"],
    # a typed context: one of the two bad segments is mixed in and an answer has a space the tables strip, so only
    # the run's stored inputs (not its tables) say what was typed
    "poisoned-explore": ["poisoned", "explore", "--question", "Where was Vobil born?",
                         "--segment", "Vobil was born in Suzol.", "--segment", "-Vobil comes from Suzol.",
                         "--bad-segment", "Vobil was born in Pital.",
                         "--bad-segment", "The birthplace of Vobil is Pital.",
                         "--answer", " Suzol", "--answer", "Pital",
                         "--n-bad", "1", "--position", "first", "--seed", "2"],
    "induction-attention": ["induction", "attention", "--text", "Vobil was born in Suzol . Vobil was born in",
                            "--layer", "1", "--head", "0", "--no-bos"],
    "induction-emergence": ["induction", "train", "--steps", "4", "--record-every", "2", "--batch-size", "4",
                            "--seq-len", "8", "--vocab-size", "16", "--n-layers", "1", "--n-heads", "2", "--seed", "1"],
}  # fmt: skip
OWN_MODEL = {"spectra-memory", "induction-emergence"}
NO_FIGURES = {"induction-attention"}
STATIC_WORKS = importlib.util.find_spec("kaleido") is not None and pure.browser_path() is not None
EVERY_BUNDLE_FILE = ("README.md", "provenance.json", "summary.json", "command.txt", "MANIFEST.json",
                     "inputs/digests.json")  # fmt: skip


def cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, dict | None, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if captured.out.strip() else None), captured.err


def stored_run(capsys: pytest.CaptureFixture, probe: str) -> str:
    code, out, err = cli(capsys, *RUNS[probe], "--json")
    assert code == 0, err
    return out["run_id"]


def snapshot(store: ResultStore, run_id: str) -> tuple:
    run = store.load(run_id)
    return run.created_at, run.duration_s, {name: frame.copy() for name, frame in run.tables.items()}


def assert_unchanged(store: ResultStore, run_id: str, before: tuple) -> None:
    after = snapshot(store, run_id)
    assert after[:2] == before[:2]
    assert list(after[2]) == list(before[2])
    for name, frame in before[2].items():
        pd.testing.assert_frame_equal(after[2][name], frame)


def fail_static(figures, names):
    raise RuntimeError("BrowserFailedError: no browser could be started")


@pytest.mark.parametrize("probe", list(RUNS))
def test_bundle_reproduce_and_command(
    probe: str, capsys: pytest.CaptureFixture, store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = stored_run(capsys, probe)
    store = ResultStore(store_path)
    run = store.load(run_id)
    before = snapshot(store, run_id)

    code, out, err = cli(capsys, "cache", "bundle", run_id[:10], "--out", str(tmp_path / "out"), "--json")
    assert code == 0, err
    folder = Path(out["bundle"])
    assert folder.name == f"{probe}-{run_id[:12]}"
    files = pure.read_bundle(folder)
    for name in EVERY_BUNDLE_FILE:
        assert files.get(name), name
    for table in run.tables:
        assert pd.read_parquet(folder / "tables" / f"{table}.parquet").equals(run.tables[table])
        assert (folder / "tables" / f"{table}.csv").stat().st_size > 0
    html = sorted(name for name in files if name.endswith(".html"))
    assert (probe in NO_FIGURES) != bool(html) and all(b"plotly" in files[name].lower() for name in html)
    if STATIC_WORKS and html:
        assert out["static_export"] == "written" and out["messages"] == []
        for page in html:
            png, svg = files[page.replace(".html", ".png")], files[page.replace(".html", ".svg")]
            assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
            assert svg.lstrip().startswith(b"<svg") and len(svg) > 1000
    manifest = json.loads(files["MANIFEST.json"])["files"]
    assert set(manifest) == set(files) - {"MANIFEST.json"}
    pure.verify_manifest(files)
    provenance = json.loads(files["provenance.json"])
    assert provenance["run_id"] == run_id and provenance["config"] == run.config
    assert {"python", "platform", "torch"} <= set(provenance["machine"])
    assert json.loads(files["inputs/digests.json"])["input_digest"] == run.input_digest
    if probe == "poisoned":
        assert "inputs/testbed/testbed.json" in files
    if probe == "poisoned-explore":  # what was typed, as stored with the run
        typed = json.loads(files["inputs/explore.json"])
        assert typed["inappropriate"] == ["Vobil was born in Pital.", "The birthplace of Vobil is Pital."]
        assert typed["candidates"] == [" Suzol", "Pital"] and files["files/explore_inputs.json"]
        assert "from the run's stored inputs" in json.loads(files["inputs/digests.json"])["note"]
    if probe not in OWN_MODEL:
        assert provenance["model_content_digest"]  # verified through the rebuilt key

    empty = str(tmp_path / "empty.duckdb")  # the bundle alone (no store) is enough to recompute the run
    for target, store_args in ((str(folder), ["--db", empty]), (run_id[:10], [])):  # the bundle, then the store
        code, report, err = cli(capsys, "cache", "reproduce", target, *store_args, "--json")
        assert code == 0, err
        assert report["match"] and report["same_run_id"], report
        assert report["tolerance"]["rtol"] == 0.0 and report["tolerance"]["atol"] == 0.0  # exact on the CPU
        assert {table["table"] for table in report["tables"]} == set(run.tables)
        assert all(table["match"] for table in report["tables"])
        assert all(diff == 0.0 for table in report["tables"] for diff in table["max_abs_diff"].values())
    assert_unchanged(store, run_id, before)
    assert store.list_runs()["run_id"].tolist().count(run_id) == 1

    command = (folder / "command.txt").read_text().strip()
    argv = shlex.split(command)
    assert argv[:3] == ["python", "-m", "probes"] and argv[-1] == "--json"
    monkeypatch.setenv("ASSOCLENS_DB", str(tmp_path / "fresh.duckdb"))  # recompute, not served from the store
    monkeypatch.chdir(folder)  # input paths in the command are relative to the bundle
    code, recomputed, err = cli(capsys, *argv[3:])
    assert code == 0, err
    assert recomputed["run_id"] == run_id and recomputed.get("cached") in (False, None)
    assert ResultStore(tmp_path / "fresh.duckdb").list_runs()["run_id"].tolist() == [run_id]  # computed afresh


def test_zip_bundle_and_tampering(
    capsys: pytest.CaptureFixture, store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pure, "static_export", fail_static)  # keep it fast; static export is tested above
    run_id = stored_run(capsys, "induction")
    store = ResultStore(store_path)
    before = snapshot(store, run_id)
    code, out, _ = cli(capsys, "cache", "bundle", run_id, "--out", str(tmp_path / "zips"), "--zip", "--json")
    assert code == 0 and out["bundle"].endswith(".zip")
    code, out, _ = cli(capsys, "cache", "bundle", run_id, "--out", str(tmp_path / "dirs"), "--json")
    folder = Path(out["bundle"])
    (folder / "figures" / "stale.png").write_bytes(b"old")
    code, again, _ = cli(capsys, "cache", "bundle", run_id, "--out", str(tmp_path / "dirs"), "--json")
    assert code == 0 and again["bundle"] == str(folder) and not (folder / "figures" / "stale.png").exists()
    pure.verify_manifest(pure.read_bundle(folder))  # an earlier bundle of the run is replaced whole

    def tampered(name: str, change) -> Path:
        copy = tmp_path / f"copy-{name.replace('/', '-')}" / folder.name
        shutil.copytree(folder, copy)
        change(copy / name)
        return copy

    def flip_byte(path: Path) -> None:
        content = bytearray(path.read_bytes())
        content[len(content) // 2] ^= 0x01
        path.write_bytes(bytes(content))

    cases = [
        (tampered("tables/head_scores.csv", flip_byte), "tables/head_scores.csv", "altered"),
        (tampered("tables/top_heads.parquet", flip_byte), "tables/top_heads.parquet", "altered"),
        (tampered("tables/loss_by_position.parquet", Path.unlink), "tables/loss_by_position.parquet", "missing"),
        (tampered("provenance.json", Path.unlink), "provenance.json", "missing"),
    ]
    zipped = tmp_path / "altered.zip"
    with zipfile.ZipFile(out_zip := Path(tmp_path / "zips" / f"{folder.name}.zip")) as source:
        with zipfile.ZipFile(zipped, "w") as target:
            for item in source.infolist():
                content = source.read(item)
                if item.filename.endswith("head_scores.csv"):
                    content = content.replace(b"0", b"1", 1)
                target.writestr(item, content)
    cases.append((zipped, "tables/head_scores.csv", "altered"))
    for path, name, word in cases:
        code, report, err = cli(capsys, "cache", "reproduce", str(path), "--json")
        assert code == 2 and report is None
        assert err.count("\n") == 1 and err.startswith("error: ")
        assert name in err and word in err, err
    code, report, err = cli(capsys, "cache", "reproduce", str(out_zip), "--json")
    assert code == 0 and report["match"], err
    assert_unchanged(store, run_id, before)


def test_bundle_without_a_browser_still_writes_html_and_says_why(
    capsys: pytest.CaptureFixture, store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pure, "static_export", fail_static)
    run_id = stored_run(capsys, "spectra-memory")
    code, out, err = cli(capsys, "cache", "bundle", run_id, "--out", str(tmp_path), "--json")
    assert code == 0
    assert out["static_export"] == "skipped"
    [message] = out["messages"]
    assert message.startswith("PNG/SVG figures skipped") and "no browser could be started" in message
    assert f"warning: {message}" in err
    files = pure.read_bundle(out["bundle"])
    assert any(name.endswith(".html") for name in files)
    assert not any(name.endswith((".png", ".svg")) for name in files)
    assert "PNG/SVG figures skipped" in files["README.md"].decode()
    assert json.loads(files["provenance.json"])["static_export"]["skipped"] == message
    pure.verify_manifest(files)


def test_user_testbed_not_stored_is_said_and_can_be_given(
    capsys: pytest.CaptureFixture, store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from probes.poisoned.testbed import EMBEDDED_TESTBED

    monkeypatch.setattr(pure, "static_export", fail_static)
    data = json.loads(EMBEDDED_TESTBED.read_text())
    upload = tmp_path / "mine.json"
    upload.write_text(json.dumps(data[:-1]))  # another testbed: one item fewer, another file name
    code, out, err = cli(capsys, *RUNS["poisoned"], "--testbed", str(upload), "--json")
    assert code == 0, err
    run_id = out["run_id"]
    kept = tmp_path / "kept.json"
    shutil.move(upload, kept)

    code, report, err = cli(capsys, "cache", "reproduce", run_id, "--json")
    assert code == 2 and report is None and err.count("\n") == 1
    assert "testbed is not stored" in err and "--testbed" in err
    code, report, err = cli(capsys, "cache", "reproduce", run_id, "--testbed", str(kept), "--json")
    assert code == 0 and report["match"], err  # found under the run's category name ("mine")
    code, out, err = cli(capsys, "cache", "bundle", run_id, "--out", str(tmp_path / "b"), "--json")
    assert code == 0 and out["command"] is None  # the upload is not stored: no inputs, no command
    assert "testbed is not stored" in " ".join(out["messages"])


def test_a_hub_model_that_is_not_here_is_one_clear_message(
    capsys: pytest.CaptureFixture, store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from probes.induction import scores
    from probes.models import ModelSpec
    from probes.wiring import Request

    monkeypatch.setattr(pure, "static_export", fail_static)
    key = Request(scores.NAME, scores.ScanConfig(), ModelSpec("EleutherAI/pythia-70m")).key()
    table = pd.DataFrame({"layer": [0], "head": [0], "induction": [0.5]})
    ResultStore(store_path).put(key, Payload({"head_scores": table}, device="cpu", dtype="float32"), 1.0)
    code, report, err = cli(capsys, "cache", "reproduce", key.run_id()[:8], "--json")
    assert code == 2 and report is None
    assert err.count("\n") == 1 and "EleutherAI/pythia-70m is not available here" in err
    code, out, err = cli(capsys, "cache", "bundle", key.run_id()[:8], "--out", str(tmp_path), "--json")
    assert code == 0  # a bundle is still written: the command line needs no model
    assert out["command"].startswith("python -m probes induction scan --model=EleutherAI/pythia-70m")


def test_short_or_unknown_run_id(capsys: pytest.CaptureFixture, store_path: Path, tmp_path: Path) -> None:
    for token in ("abc", "deadbeefdeadbeef"):
        code, _, err = cli(capsys, "cache", "bundle", token, "--out", str(tmp_path), "--json")
        assert code == 2 and err.count("\n") == 1


def test_explore_run_stored_before_runs_kept_their_inputs(
    capsys: pytest.CaptureFixture, store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An explore run without its inputs file (stored before runs kept one) is rebuilt from its tables and prompt
    when they show everything typed (the digest decides), and is one clear error when they do not."""
    from probes import wiring
    from probes.models import ModelSpec
    from probes.poisoned import EXPLORE_NAME, ExploreConfig, ExploreInput

    monkeypatch.setattr(pure, "static_export", fail_static)
    store = ResultStore(store_path)
    question, good, bad = "Where was Vobil born?", ("Vobil was born in Suzol.",), ("Vobil was born in Pital.",)
    shown = ExploreInput(question, good, bad, ("Suzol", "Pital"))
    hidden = ExploreInput(question, good, (*bad, "The birthplace of Vobil is Pital."), ("Suzol", "Pital"))
    ids = {}
    for name, data in (("shown", shown), ("hidden", hidden)):
        request = wiring.Request(EXPLORE_NAME, ExploreConfig(n_inappropriate=1), ModelSpec(), data)
        payload, seconds = wiring.compute_payload(request)
        assert set(payload.files) == {"explore_inputs.json"}  # new runs keep what was typed
        payload.files = {}  # as an older run was stored
        ids[name] = store.put(request.key(), payload, seconds).run_id
    code, report, err = cli(capsys, "cache", "reproduce", ids["shown"][:10], "--json")
    assert code == 0 and report["match"] and report["same_run_id"], err
    code, out, err = cli(capsys, "cache", "bundle", ids["shown"], "--out", str(tmp_path / "b"), "--json")
    assert code == 0 and "'--bad-segment=Vobil was born in Pital.'" in out["command"], err
    digests = json.loads(Path(out["bundle"], "inputs", "digests.json").read_text())
    assert "from the run's tables and prompt" in digests["note"]
    assert Path(out["bundle"], "inputs", "explore.json").read_bytes() == shown.to_json_bytes()

    code, report, err = cli(capsys, "cache", "reproduce", ids["hidden"], "--json")  # a segment never mixed in
    assert code == 2 and report is None and err.count("\n") == 1
    assert "typed context is not stored" in err
    code, out, err = cli(capsys, "cache", "bundle", ids["hidden"], "--out", str(tmp_path / "h"), "--json")
    assert code == 0 and out["command"] is None and "typed context is not stored" in " ".join(out["messages"])


def test_ladder_bundle_carries_vector_and_vocabulary(
    capsys: pytest.CaptureFixture, store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A steering ladder (the Steering page's run) reproduces from the store and from its bundle alone: the bundle
    carries the vector and the vocabulary; a vocabulary of the user's own is not stored, which is said."""
    from probes import wiring
    from probes.models import ModelSpec
    from probes.steering import LADDER_NAME, LadderConfig
    from probes.steering.prompts import default_prompt_sets

    monkeypatch.setattr(pure, "static_export", fail_static)
    code, built, err = cli(capsys, "steering", "vectors", "--n-pairs", "4", "--associative-set", "dream", "--json")
    assert code == 0, err
    store = ResultStore(store_path)
    vectors = wiring.result_of(store.load(built["run_id"])).vectors
    sets = default_prompt_sets(ModelSpec(), "dream")
    vocabulary = frozenset(word.lower() for word in sets.associative_words)
    assert vocabulary
    config = LadderConfig(prompt=sets.facts[0].prompt, strengths=(-2.0, 2.0), layers=vectors.layers, max_new_tokens=3)
    ladder = wiring.run(
        store, wiring.Request(LADDER_NAME, config, ModelSpec(), wiring.LadderInputs(vectors, vocabulary))
    )
    before = snapshot(store, ladder.run_id)

    code, out, err = cli(capsys, "cache", "bundle", ladder.run_id, "--out", str(tmp_path / "b"), "--json")
    assert code == 0, err
    files = pure.read_bundle(out["bundle"])
    assert json.loads(files["inputs/vocabulary.json"]) == sorted(vocabulary)
    assert files["inputs/vector.safetensors"] == vectors.to_safetensors()
    assert json.loads(files["inputs/vector_run.json"])["run_id"] == built["run_id"]
    assert out["command"] is None and "Steering page only" in files["command.txt"].decode()
    for target, store_args in ((out["bundle"], ["--db", str(tmp_path / "empty.duckdb")]), (ladder.run_id, [])):
        code, report, err = cli(capsys, "cache", "reproduce", target, *store_args, "--json")
        assert code == 0 and report["match"] and report["same_run_id"], err
        assert [table["table"] for table in report["tables"]] == ["generations"]
    assert_unchanged(store, ladder.run_id, before)

    own = wiring.LadderInputs(vectors, frozenset({"mine", "words"}))
    other = wiring.run(store, wiring.Request(LADDER_NAME, config, ModelSpec(), own))
    capsys.readouterr()  # the model loading's progress bar, not the command's
    code, report, err = cli(capsys, "cache", "reproduce", other.run_id, "--json")
    assert code == 2 and report is None and err.count("\n") == 1 and "vocabulary is not stored" in err


def test_rw_steering_tuning_reproduces_without_touching_its_tuned_model(
    capsys: pytest.CaptureFixture, store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The RW-Steering fine-tuning run reproduces (from the store and from its bundle alone) into a throwaway tuned
    folder, never over the stored run's revision; its bundle's `poisoned mitigate` command re-keys the same run."""
    import os

    from probes.models import TUNED_DIR_ENV, tuned_folder

    monkeypatch.setattr(pure, "static_export", fail_static)
    tuned_dir = tmp_path / "tuned"
    monkeypatch.setenv(TUNED_DIR_ENV, str(tuned_dir))
    quick = ["--n-items", "4", "--stage1-steps", "2", "--stage2-steps", "1", "--batch-size", "2", "--held-out", "0.05"]
    curves = ["--steps=2", "--bootstrap=0"]  # the held-out curves' settings: not part of the fine-tuning run
    code, out, err = cli(capsys, "poisoned", "mitigate", *quick, *curves, "--json")
    assert code == 0, err
    run_id = out["tuning"]["run_id"]
    folder = tuned_folder("organism", out["revision"])
    assert folder is not None
    weights = {path.name: (path.stat().st_mtime_ns, path.read_bytes()) for path in folder.iterdir()}
    store = ResultStore(store_path)
    before = snapshot(store, run_id)

    code, bundled, err = cli(capsys, "cache", "bundle", run_id, "--out", str(tmp_path / "b"), "--json")
    assert code == 0, err
    files = pure.read_bundle(bundled["bundle"])
    assert "inputs/testbed/testbed.json" in files and "tuning.run_id" in files["README.md"].decode()
    for target, store_args in ((bundled["bundle"], ["--db", str(tmp_path / "empty.duckdb")]), (run_id[:10], [])):
        code, report, err = cli(capsys, "cache", "reproduce", target, *store_args, "--json")
        assert code == 0 and report["match"] and report["same_run_id"], err
        assert report["tables"][0]["table"] == "history" and report["tables"][0]["max_abs_diff"]["loss"] == 0.0
    assert os.environ[TUNED_DIR_ENV] == str(tuned_dir)  # restored after each reproduction
    assert {path.name: (path.stat().st_mtime_ns, path.read_bytes()) for path in folder.iterdir()} == weights
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no other revision written here
    assert_unchanged(store, run_id, before)

    # a tuned revision tuned again: its base (a tuned revision itself) stays loadable while the tuning is recomputed
    code, again, err = cli(capsys, "poisoned", "mitigate", f"--revision={out['revision']}", *quick, *curves, "--json")
    assert code == 0, err
    code, report, err = cli(capsys, "cache", "reproduce", again["tuning"]["run_id"], "--json")
    assert code == 0 and report["match"] and report["same_run_id"], err
    assert sorted(p.name for p in folder.parent.iterdir()) == sorted([folder.name, again["revision"]])

    argv = shlex.split(bundled["command"])
    assert argv[3:5] == ["poisoned", "mitigate"]
    monkeypatch.setenv("ASSOCLENS_DB", str(tmp_path / "fresh.duckdb"))
    monkeypatch.setenv(TUNED_DIR_ENV, str(tmp_path / "fresh-tuned"))
    monkeypatch.chdir(bundled["bundle"])
    code, recomputed, err = cli(capsys, *argv[3:-1], *curves, "--json")
    assert code == 0, err
    assert recomputed["tuning"]["run_id"] == run_id and recomputed["tuning"]["cached"] is False
    assert recomputed["revision"] == out["revision"]


# --- the pure parts ---------------------------------------------------------------------------------------


def test_command_argv_refuses_a_config_the_cli_cannot_set() -> None:
    from probes.spectra.memory import MemoryConfig

    config = json.loads(json.dumps(MemoryConfig().__dict__))
    assert pure.command_argv("spectra-memory", config, "x", None)[:2] == ["spectra", "memory"]
    with pytest.raises(pure.BundleError, match="adam_beta1"):
        pure.command_argv("spectra-memory", {**config, "adam_beta1": 0.5}, "x", None)
    with pytest.raises(pure.BundleError, match="no one-run CLI command"):
        pure.command_argv("steering.ladder", {}, "x", None)


def test_compare_tables_reports_max_difference_and_tolerance() -> None:
    stored = {"t": pd.DataFrame({"x": [1.0, 2.0, float("nan")], "name": ["a", "b", "c"], "seconds": [1.0, 2.0, 3.0]})}
    nudged = {"t": stored["t"].assign(x=[1.0, 2.0 + 1e-9, float("nan")], seconds=[9.0, 9.0, 9.0])}
    [exact] = pure.compare_tables(stored, nudged, **pure.EXACT)
    assert not exact["match"] and exact["mismatched"] == ["x"]
    assert exact["max_abs_diff"]["x"] == pytest.approx(1e-9, rel=1e-3)
    assert exact["timing_columns"] == ["seconds"]  # wall-clock columns never decide
    [loose] = pure.compare_tables(stored, nudged, **pure.LOOSE)
    assert loose["match"]
    [renamed] = pure.compare_tables(stored, {"t": stored["t"].assign(name=["a", "b", "d"])}, **pure.LOOSE)
    assert renamed["mismatched"] == ["name"]
    assert pure.tolerance_for("cpu", "cpu") == pure.EXACT and pure.tolerance_for("cuda", "cuda") == pure.LOOSE


def test_a_reproduction_that_does_not_match_exits_1(capsys: pytest.CaptureFixture, monkeypatch) -> None:
    import probes.cli.bundle as bundle_cli

    monkeypatch.setattr(bundle_cli, "reproduce", lambda target, store, testbed=None: {"match": False, "tables": []})
    assert main(["cache", "reproduce", "0123456789ab", "--json"]) == 1
    monkeypatch.setattr(bundle_cli, "reproduce", lambda target, store, testbed=None: {"match": True, "tables": []})
    assert main(["cache", "reproduce", "0123456789ab", "--json"]) == 0


# --- a mitigation's held-out curves ------------------------------------------------------------------------

QUICK_TUNING = ["--n-items=4", "--stage1-steps=2", "--stage2-steps=1", "--batch-size=2", "--held-out=0.05"]
QUICK_CURVES = ["--steps=2", "--bootstrap=0"]


def mitigation(capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A tiny `poisoned mitigate` run (its tuned revision under tmp_path/tuned)."""
    from probes.models import TUNED_DIR_ENV

    monkeypatch.setattr(pure, "static_export", fail_static)
    monkeypatch.setenv(TUNED_DIR_ENV, str(tmp_path / "tuned"))
    code, out, err = cli(capsys, "poisoned", "mitigate", *QUICK_TUNING, *QUICK_CURVES, "--json")
    assert code == 0, err
    return out


def test_mitigation_curves_reproduce_from_store_and_bundle(
    capsys: pytest.CaptureFixture, store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The held-out curves before and after an RW-Steering fine-tuning reproduce exactly, from the store and from
    their bundles alone: a bundle carries the full testbed and the tuning run's split settings (inputs/split.json),
    from which the held-out testbed is split again to the run's digest; its `poisoned mitigate` command re-keys the
    before-curve (and recomputes the after-curve's tables)."""
    from probes.models import TUNED_DIR_ENV, ModelSpec, load_tokenizer
    from probes.poisoned import load_testbed
    from probes.poisoned.mitigate import MitigateConfig, split_items

    out = mitigation(capsys, tmp_path, monkeypatch)
    store = ResultStore(store_path)
    tuning_id = out["tuning"]["run_id"]
    ids = {"before": out["before"]["run_id"], "after": out["after"]["run_id"]}
    snapshots = {name: snapshot(store, run_id) for name, run_id in ids.items()}
    bundles = {}
    for name, run_id in ids.items():
        run = store.load(run_id)
        assert run.probe == "poisoned" and run.config["judge_first"] == (name == "after")
        code, bundled, err = cli(capsys, "cache", "bundle", run_id, "--out", str(tmp_path / "b"), "--json")
        assert code == 0 and bundled["command"], (bundled, err)
        bundles[name] = bundled
        files = pure.read_bundle(bundled["bundle"])
        split = json.loads(files["inputs/split.json"])
        assert (
            split["tuning_run_id"] == tuning_id
            and split["curve"] == name
            and split["held_out_digest"] == (run.input_digest)
        )
        # the held-out testbed, split again from the bundle's files alone, has the run's digest
        full = load_testbed(files[split["testbed"]], split["testbed"].rsplit("/", 1)[-1])
        assert full.digest == split["input_digest"] == store.load(tuning_id).input_digest
        held_out = split_items(full, load_tokenizer(ModelSpec()), MitigateConfig(**split["config"])).held_out
        assert held_out.digest == run.input_digest and len(held_out.items) == split["held_out_items"] < len(full.items)
        readme = files["README.md"].decode()
        assert f"`{name}.run_id` in the JSON" in readme and tuning_id[:12] in readme
        argv = shlex.split(bundled["command"])
        assert argv[3:5] == ["poisoned", "mitigate"] and "--steps=2" in argv and "--bootstrap=0" in argv
        for target, store_args in ((bundled["bundle"], ["--db", str(tmp_path / "empty.duckdb")]), (run_id[:10], [])):
            code, report, err = cli(capsys, "cache", "reproduce", target, *store_args, "--json")
            assert code == 0, err
            assert report["match"] and report["same_run_id"] and report["recomputed_run_id"] == run_id, report
            assert report["tolerance"]["rtol"] == 0.0 and {t["table"] for t in report["tables"]} == set(run.tables)
            assert all(diff == 0.0 for table in report["tables"] for diff in table["max_abs_diff"].values())
        assert_unchanged(store, run_id, snapshots[name])
    assert bundles["before"]["command"] == bundles["after"]["command"]  # one command makes all three runs

    monkeypatch.setenv("ASSOCLENS_DB", str(tmp_path / "fresh.duckdb"))
    monkeypatch.setenv(TUNED_DIR_ENV, str(tmp_path / "fresh-tuned"))
    monkeypatch.chdir(bundles["before"]["bundle"])
    code, recomputed, err = cli(capsys, *shlex.split(bundles["before"]["command"])[3:])
    assert code == 0, err
    assert recomputed["before"]["run_id"] == ids["before"] and recomputed["tuning"]["run_id"] == tuning_id
    assert recomputed["before"]["cached"] is False and recomputed["revision"] == out["revision"]
    assert recomputed["after"]["run_id"] == ids["after"]  # the retrained folder has the same content digest
    fresh = ResultStore(tmp_path / "fresh.duckdb").load(recomputed["after"]["run_id"])
    for table, frame in store.load(ids["after"]).tables.items():  # the retrained model scores the same
        pd.testing.assert_frame_equal(fresh.tables[table], frame)


def test_after_curve_without_its_tuned_folder_is_one_clear_message(
    capsys: pytest.CaptureFixture, store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the tuned revision's folder is missing, reproducing the after-curve (from the store or its bundle) is one
    error line saying the run's model is not available here; its bundle still carries the inputs and the command,
    and the before-curve (the base model's) still reproduces."""
    from probes.models import TUNED_DIR_ENV

    out = mitigation(capsys, tmp_path, monkeypatch)
    after, before = out["after"]["run_id"], out["before"]["run_id"]
    code, bundled, err = cli(capsys, "cache", "bundle", after, "--out", str(tmp_path / "b"), "--json")
    assert code == 0 and not any("command.txt" in message for message in bundled["messages"]), err

    monkeypatch.setenv(TUNED_DIR_ENV, str(tmp_path / "elsewhere"))  # a machine without the tuned folder
    for target, store_args in ((bundled["bundle"], ["--db", str(tmp_path / "empty.duckdb")]), (after[:10], [])):
        code, report, err = cli(capsys, "cache", "reproduce", target, *store_args, "--json")
        assert code == 2 and report is None and err.count("\n") == 1 and err.startswith("error: "), err
        assert "the run's model is not available here" in err and out["revision"] in err
        assert str(tmp_path / "elsewhere") in err
    code, missing, err = cli(capsys, "cache", "bundle", after, "--out", str(tmp_path / "m"), "--json")
    assert code == 0 and missing["command"] == bundled["command"], err
    files = pure.read_bundle(missing["bundle"])
    assert {"inputs/split.json", "inputs/testbed/testbed.json"} <= set(files)
    assert "the run's model is not available here" not in json.loads(files["inputs/digests.json"])["note"]
    code, report, err = cli(capsys, "cache", "reproduce", before, "--json")
    assert code == 0 and report["match"] and report["same_run_id"], err
