"""Result-store faults: a file locked by another process, a corrupt or truncated file, a run killed half-way,
and several writers at once (threads with their own store objects, and separate processes).

Each fault ends either in success or in one clear StoreError; never a half-written run, never a raw DuckDB error.
"""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from cache import Payload, ResultStore, RunKey, StoreError

REPO_ROOT = Path(__file__).resolve().parent.parent
IDENTITY = {"model_id": "fault-model", "revision": None, "content_digest": None}
TABLES_PER_RUN = 3


def key(index: int | str, probe: str = "fault") -> RunKey:
    return RunKey.build(probe, "1", IDENTITY, {"index": index})


def payload(rows: int = 100) -> Payload:
    tables = {f"t{n}": pd.DataFrame({"x": range(rows), "label": [f"r{i}" for i in range(rows)]}) for n in range(3)}
    return Payload(tables=tables, summary={"rows": rows})


def python(script: str, *args: str, **popen) -> subprocess.Popen:
    """A child Python in the repository root (so `cache` imports), started by this test and ended by it."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def end(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    process.communicate(timeout=30)


def raw_counts(path: Path) -> dict[str, int]:
    with duckdb.connect(str(path)) as con:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("runs", "run_tables", "run_files")}


def assert_no_orphans(path: Path) -> None:
    """Every stored run has all its tables, and no table row belongs to a missing run."""
    with duckdb.connect(str(path)) as con:
        orphans = con.execute(
            "SELECT count(*) FROM run_tables WHERE run_id NOT IN (SELECT run_id FROM runs)"
        ).fetchone()[0]
        incomplete = con.execute(
            "SELECT count(*) FROM runs r WHERE (SELECT count(*) FROM run_tables t WHERE t.run_id = r.run_id) <> ?",
            [TABLES_PER_RUN],
        ).fetchone()[0]
    assert orphans == 0, f"{orphans} table rows without a run"
    assert incomplete == 0, f"{incomplete} runs with missing tables"


LOCKER = """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])  # holds the file lock for as long as it lives
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    con.close()
"""


def hold_lock(path: Path, seconds: float) -> subprocess.Popen:
    locker = python(LOCKER, str(path), str(seconds))
    assert locker.stdout.readline().strip() == "locked", locker.stderr.read()
    return locker


# --- locked by another process --------------------------------------------------------------------------------


def test_locked_file_gives_clear_store_error_within_the_timeout(tmp_path: Path) -> None:
    path = tmp_path / "r.duckdb"
    store = ResultStore(path, lock_timeout_s=1.5)
    store.put(key(0), payload(), 0.1)
    locker = hold_lock(path, 120)
    try:
        started = time.monotonic()
        with pytest.raises(StoreError) as caught:
            store.list_runs()
        waited = time.monotonic() - started
        assert 1.0 <= waited < 8.0, f"waited {waited:.1f} s for a 1.5 s lock timeout"
        message = str(caught.value)
        assert "locked" in message and str(path) in message and "\n" not in message
        with pytest.raises(StoreError):
            store.put(key(1), payload(), 0.1)
        # A store opened while the lock is held must not mistake the lock for corruption.
        with pytest.raises(StoreError):
            ResultStore(path, lock_timeout_s=1.0)
        assert path.exists() and not list(tmp_path.glob("*.corrupt-*"))
    finally:
        end(locker)
    assert list(store.list_runs()["run_id"]) == [key(0).run_id()]
    store.put(key(1), payload(), 0.1)
    assert len(store.list_runs()) == 2


def test_brief_lock_is_waited_out(tmp_path: Path) -> None:
    path = tmp_path / "r.duckdb"
    store = ResultStore(path, lock_timeout_s=30)
    locker = hold_lock(path, 1.5)
    try:
        started = time.monotonic()
        stored = store.put(key(0), payload(), 0.1)
        waited = time.monotonic() - started
    finally:
        end(locker)
    assert waited >= 0.5, "the put did not wait for the other process at all"
    assert stored.run_id == key(0).run_id()
    assert store.get(key(0)) is not None


# --- corrupt or truncated file --------------------------------------------------------------------------------


def test_corrupt_file_is_kept_aside_byte_for_byte_and_a_fresh_store_works(tmp_path: Path) -> None:
    path = tmp_path / "r.duckdb"
    garbage = os.urandom(4096) + b"not a database" * 64
    path.write_bytes(garbage)
    store = ResultStore(path)
    aside = list(tmp_path.glob("r.duckdb.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == garbage
    assert store.notice and str(aside[0]) in store.notice and "\n" not in store.notice
    store.put(key(0), payload(), 0.1)
    assert len(store.list_runs()) == 1
    assert ResultStore(path).notice is None  # the fresh file is healthy: no notice the next time


def test_empty_file_is_treated_like_a_corrupt_one(tmp_path: Path) -> None:
    path = tmp_path / "r.duckdb"
    path.write_bytes(b"")
    store = ResultStore(path)
    store.put(key(0), payload(), 0.1)
    assert len(store.list_runs()) == 1


def test_truncated_file_never_leaks_a_raw_duckdb_error(tmp_path: Path) -> None:
    path = tmp_path / "r.duckdb"
    store = ResultStore(path)
    for index in range(10):
        store.put(key(index), payload(5000), 0.1)
    data = path.read_bytes()
    damaged = tmp_path / "damaged.duckdb"
    damaged.write_bytes(data[: len(data) // 2])  # a copy cut short, a full disk
    reopened = ResultStore(damaged, lock_timeout_s=2)
    try:
        for run_id in reopened.list_runs()["run_id"]:
            reopened.load(run_id)
    except StoreError:
        pass  # a clear StoreError is an acceptable answer; a raw duckdb error is not
    if reopened.notice:
        assert list(tmp_path.glob("damaged.duckdb.corrupt-*"))


def test_store_notice_reaches_the_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole app (entry point, sidebar, home page) opens on a corrupt file and shows the 'moved aside' warning."""
    from streamlit.testing.v1 import AppTest

    path = tmp_path / "r.duckdb"  # a new path: the app's per-path store cache has no entry for it
    garbage = b"\x00garbage" * 500
    path.write_bytes(garbage)
    monkeypatch.setenv("ASSOCLENS_DB", str(path))
    app = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=300)
    app.run()
    assert not app.exception, app.exception
    warnings = " ".join(w.value for w in app.warning)
    assert "unreadable" in warnings and "moved" in warnings, warnings
    aside = list(tmp_path.glob("r.duckdb.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == garbage
    assert any("No runs yet" in info.value for info in app.info)  # the fresh store is in use


def calls_show_store_notice(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    return any(
        isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "show_store_notice"
        for node in ast.walk(tree)
    )


PAGE_FILES = sorted(p.name for p in (REPO_ROOT / "pages").glob("*.py") if p.name not in {"common.py", "__init__.py"})


@pytest.mark.parametrize("page_file", PAGE_FILES)
def test_every_page_shows_the_store_notice(page_file: str) -> None:
    """A moved-aside database is announced whichever page the user opens first."""
    if calls_show_store_notice(REPO_ROOT / "app.py"):
        return  # shown once for every page by the entry point
    source = REPO_ROOT / "pages" / page_file
    if "placeholder until the probe lands" in source.read_text():
        pytest.xfail(f"pages/{page_file} is still the placeholder; the probe page has not landed")
    assert calls_show_store_notice(source), f"pages/{page_file} never calls show_store_notice()"


# --- a run killed half-way ------------------------------------------------------------------------------------

KILLED_DURING_COMPUTE = """
    import sys, time
    from pathlib import Path
    import pandas as pd
    from cache import Payload, ResultStore, RunKey

    store = ResultStore(sys.argv[1])
    def compute():
        print("computing", flush=True)
        time.sleep(120)
        return Payload(tables={"t0": pd.DataFrame({"x": [1]})})
    store.get_or_compute(RunKey.build("fault", "1", {"model_id": "fault-model"}, {"index": "killed"}), compute)
"""


def test_run_killed_during_compute_leaves_no_row(tmp_path: Path) -> None:
    path = tmp_path / "r.duckdb"
    ResultStore(path).put(key(0), payload(), 0.1)
    child = python(KILLED_DURING_COMPUTE, str(path))
    try:
        assert child.stdout.readline().strip() == "computing", child.stderr.read()
        os.kill(child.pid, signal.SIGKILL)
    finally:
        end(child)
    assert child.returncode == -signal.SIGKILL
    store = ResultStore(path)
    assert store.notice is None
    assert list(store.list_runs()["run_id"]) == [key(0).run_id()]
    assert_no_orphans(path)


KILLED_INSIDE_TRANSACTION = """
    import os, signal, sys
    import duckdb
    import pandas as pd
    from cache import Payload, ResultStore, RunKey
    from cache import store as store_module

    path = sys.argv[1]
    store = ResultStore(path)
    real_connect = duckdb.connect

    class DiesAfterFirstTable:
        # Forwards to a real connection, and SIGKILLs this process after the run row and one table row.
        def __init__(self, con):
            self.con = con
            self.tables_written = 0

        def __getattr__(self, name):
            return getattr(self.con, name)

        def execute(self, sql, params=None):
            result = self.con.execute(sql, params) if params is not None else self.con.execute(sql)
            if sql.startswith("INSERT INTO run_tables"):
                self.tables_written += 1
                if self.tables_written == 1:
                    print("inside", flush=True)
                    os.kill(os.getpid(), signal.SIGKILL)
            return result

    store_module.duckdb.connect = lambda p: DiesAfterFirstTable(real_connect(p))
    tables = {f"t{n}": pd.DataFrame({"x": range(50000)}) for n in range(3)}
    store.put(RunKey.build("fault", "1", {"model_id": "fault-model"}, {"index": "killed"}), Payload(tables=tables), 1.0)
    print("survived", flush=True)
"""


def test_run_killed_inside_the_write_transaction_leaves_no_partial_row(tmp_path: Path) -> None:
    path = tmp_path / "r.duckdb"
    ResultStore(path).put(key(0), payload(), 0.1)
    child = python(KILLED_INSIDE_TRANSACTION, str(path))
    out, err = child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL, f"rc={child.returncode}\n{out}\n{err}"
    assert out.split() == ["inside"]
    store = ResultStore(path)
    assert store.notice is None, store.notice
    assert list(store.list_runs()["run_id"]) == [key(0).run_id()]
    assert raw_counts(path) == {"runs": 1, "run_tables": TABLES_PER_RUN, "run_files": 0}
    assert_no_orphans(path)


# --- several writers at once ----------------------------------------------------------------------------------


def test_threads_with_their_own_store_objects_and_one_shared_key(tmp_path: Path) -> None:
    """Like two browser sessions asking for the same default run at the same moment."""
    path = tmp_path / "r.duckdb"
    ResultStore(path)
    computed, errors, results = [], [], []
    barrier = threading.Barrier(4)

    def session(index: int) -> None:
        try:
            store = ResultStore(path)
            barrier.wait(timeout=30)
            run = store.get_or_compute(key("shared"), lambda: computed.append(index) or payload())
            results.append(run.run_id)
            store.put(key(f"own-{index}"), payload(), 0.1)
        except Exception as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=session, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert results == [key("shared").run_id()] * 4
    assert 1 <= len(computed) <= 4
    assert len(ResultStore(path).list_runs()) == 5
    assert_no_orphans(path)


WRITER = """
    import sys
    import pandas as pd
    from cache import Payload, ResultStore, RunKey
    store = ResultStore(sys.argv[1], lock_timeout_s=60)
    name = sys.argv[2]
    def payload():
        return Payload(tables={f"t{n}": pd.DataFrame({"x": range(200)}) for n in range(3)})
    print("ready", flush=True)
    sys.stdin.readline()  # start together
    for i in range(5):
        store.put(RunKey.build("fault", "1", {"model_id": "fault-model"}, {"index": f"{name}-{i}"}), payload(), 0.0)
        store.list_runs()
    store.put(RunKey.build("fault", "1", {"model_id": "fault-model"}, {"index": "both"}), payload(), 0.0)
    print("done", flush=True)
    import os
    os._exit(0)  # as probes/__main__.py does: DuckDB 2.0 can abort in teardown after waiting on a lock
"""


def test_two_processes_writing_at_once(tmp_path: Path) -> None:
    path = tmp_path / "r.duckdb"
    ResultStore(path)
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(WRITER), str(path), name],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for name in ("a", "b")
    ]
    try:
        for writer in writers:
            assert writer.stdout.readline().strip() == "ready", writer.stderr.read()
        for writer in writers:
            writer.stdin.write("go\n")
            writer.stdin.flush()
        outputs = [writer.communicate(timeout=180) for writer in writers]
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.communicate()
    for writer, (out, err) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, err
        assert out.strip() == "done"
    runs = ResultStore(path).list_runs()
    assert len(runs) == 2 * 5 + 1
    assert_no_orphans(path)
