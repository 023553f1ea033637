"""The DuckDB result store: content-addressed keys, round trips, atomic writes, concurrent writers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from cache import Payload, ResultStore, RunKey, StoreError
from cache import store as store_module


@dataclass(frozen=True)
class ExampleConfig:
    seq_len: int = 32
    seed: int = 0


IDENTITY = {"model_id": "organism", "revision": None, "content_digest": "abc"}


def make_payload(n: int = 3) -> Payload:
    table = pd.DataFrame({"layer": range(n), "score": [0.5 * i for i in range(n)], "label": ["=1+1", "a", "b"][:n]})
    return Payload(tables={"scores": table}, summary={"best": n - 1}, files={"vector.safetensors": b"\x00\x01"})


def test_key_is_independent_of_key_order_and_sensitive_to_each_part() -> None:
    base = RunKey.build("induction", "1", IDENTITY, {"a": 1, "b": {"x": 1, "y": 2}})
    reordered = RunKey.build("induction", "1", dict(reversed(IDENTITY.items())), {"b": {"y": 2, "x": 1}, "a": 1})
    assert base.run_id() == reordered.run_id()
    variants = [
        RunKey.build("induction", "1", IDENTITY, {"a": 2, "b": {"x": 1, "y": 2}}),
        RunKey.build("induction", "2", IDENTITY, {"a": 1, "b": {"x": 1, "y": 2}}),
        RunKey.build("induction", "1", {**IDENTITY, "revision": "step-10"}, {"a": 1, "b": {"x": 1, "y": 2}}),
        RunKey.build("induction", "1", {**IDENTITY, "content_digest": "def"}, {"a": 1, "b": {"x": 1, "y": 2}}),
        RunKey.build("induction", "1", IDENTITY, {"a": 1, "b": {"x": 1, "y": 2}}, input_digest="upload"),
    ]
    assert len({key.run_id() for key in variants} | {base.run_id()}) == len(variants) + 1


def test_key_accepts_config_dataclass() -> None:
    assert RunKey.build("p", "1", IDENTITY, ExampleConfig()).config == {"seq_len": 32, "seed": 0}


def test_round_trip_and_cached_flag(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "r.duckdb")
    key = RunKey.build("induction", "1", IDENTITY, ExampleConfig(seed=7))
    calls = []
    first = store.get_or_compute(key, lambda: calls.append(1) or make_payload())
    second = store.get_or_compute(key, lambda: calls.append(1) or make_payload())
    assert calls == [1]
    assert not first.cached and second.cached
    pd.testing.assert_frame_equal(second.tables["scores"], make_payload().tables["scores"])
    assert second.summary == {"best": 2}
    assert second.files == {"vector.safetensors": b"\x00\x01"}
    assert second.seed == 7 and second.config == {"seq_len": 32, "seed": 7}
    assert "torch" in second.library_versions


def test_list_filter_delete_and_export(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "r.duckdb")
    run = store.get_or_compute(RunKey.build("induction", "1", IDENTITY, {}), make_payload)
    store.get_or_compute(RunKey.build("spectra", "1", {**IDENTITY, "model_id": "gpt2"}, {}), make_payload)
    assert set(store.list_runs()["probe"]) == {"induction", "spectra"}
    assert list(store.list_runs(probe="spectra")["model_id"]) == ["gpt2"]
    written = {path.name for path in store.export(run.run_id, "csv", tmp_path / "out")}
    assert written == {"run.json", "scores.csv", "vector.safetensors"}
    csv_text = (tmp_path / "out" / "scores.csv").read_text()
    assert "'=1+1" in csv_text  # formula injection neutralised on export
    store.export(run.run_id, "parquet", tmp_path / "pq")
    assert pd.read_parquet(tmp_path / "pq" / "scores.parquet").shape == (3, 3)
    assert store.delete(run.run_id) and not store.delete(run.run_id)
    assert list(store.list_runs()["probe"]) == ["spectra"]
    with pytest.raises(StoreError):
        store.export("missing", "csv", tmp_path / "x")


def test_interrupted_write_leaves_no_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ResultStore(tmp_path / "r.duckdb")
    payload = make_payload()
    payload.files = {"a.bin": b"1", "b.bin": b"2"}
    original_connect = store_module.duckdb.connect

    class FailingOnSecondFile:
        def __init__(self, con):
            self.con = con
            self.description = None

        def execute(self, sql, params=None):
            if sql.startswith("INSERT INTO run_files") and params[1] == "b.bin":
                raise KeyboardInterrupt  # as if the user pressed Ctrl-C half-way through the write
            result = self.con.execute(sql, params) if params is not None else self.con.execute(sql)
            self.description = self.con.description
            return result

        def close(self):
            self.con.close()

    monkeypatch.setattr(store_module.duckdb, "connect", lambda path: FailingOnSecondFile(original_connect(path)))
    with pytest.raises(KeyboardInterrupt):
        store.put(RunKey.build("p", "1", IDENTITY, {}), payload, duration_s=1.0)
    monkeypatch.setattr(store_module.duckdb, "connect", original_connect)
    assert store.list_runs().empty
    with original_connect(str(store.path)) as con:
        assert con.execute("SELECT count(*) FROM run_tables").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM run_files").fetchone()[0] == 0


def test_threads_writing_at_once(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "r.duckdb")
    errors = []

    def write(index: int) -> None:
        try:
            for repeat in range(3):
                store.put(RunKey.build("p", "1", IDENTITY, {"i": index, "r": repeat}), make_payload(), 0.1)
            store.put(RunKey.build("p", "1", IDENTITY, {"shared": True}), make_payload(), 0.1)
        except Exception as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.list_runs()) == 6 * 3 + 1


def test_another_process_writing_while_we_read(tmp_path: Path) -> None:
    path = tmp_path / "r.duckdb"
    store = ResultStore(path)
    script = textwrap.dedent(
        f"""
        import pandas as pd
        from cache import Payload, ResultStore, RunKey
        store = ResultStore({str(path)!r})
        for i in range(15):
            payload = Payload(tables={{"t": pd.DataFrame({{"x": [i]}})}}, summary={{}})
            store.put(RunKey.build("cli", "1", {{"model_id": "m"}}, {{"i": i}}), payload, 0.0)
        """
    )
    writer = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[2])
    while writer.poll() is None:
        store.list_runs()  # reading while the other process writes must neither fail nor block it for long
        time.sleep(0.02)
    assert writer.returncode == 0
    assert len(store.list_runs(probe="cli")) == 15


def test_corrupt_database_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "r.duckdb"
    path.write_bytes(b"this is not a duckdb file" * 100)
    store = ResultStore(path)
    assert store.notice and "moved" in store.notice
    assert list(tmp_path.glob("r.duckdb.corrupt-*"))
    assert store.list_runs().empty


def test_default_path_honours_environment(store_path: Path) -> None:
    assert ResultStore().path == store_path


def test_repeated_load_is_served_from_memory_without_opening_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ResultStore(tmp_path / "r.duckdb")
    key = RunKey.build("induction", "1", IDENTITY, ExampleConfig())
    store.put(key, make_payload(), 0.1)
    store.load(key.run_id())

    def refuse(*args, **kwargs):
        raise AssertionError("the database was opened for a run served before")

    monkeypatch.setattr(store_module.duckdb, "connect", refuse)
    served = store.get(key)
    assert served.cached
    served.tables["scores"].loc[0, "score"] = 99.0  # the caller's copy: the remembered run stays intact
    pd.testing.assert_frame_equal(store.get(key).tables["scores"], make_payload().tables["scores"])


def test_a_commit_by_another_process_invalidates_the_served_copy(tmp_path: Path) -> None:
    path = tmp_path / "r.duckdb"
    ours, theirs = ResultStore(path), ResultStore(path)  # two stores on one file: what two processes see
    key = RunKey.build("induction", "1", IDENTITY, ExampleConfig())
    ours.put(key, make_payload(3), 0.1)
    assert len(ours.get(key).tables["scores"]) == 3
    theirs.put(key, make_payload(2), 0.1)
    assert len(ours.get(key).tables["scores"]) == 2
    theirs.delete(key.run_id())
    assert ours.get(key) is None
