"""Cache benchmark: serving a stored result vs recomputing it (the browser side is `cache_page.py`).

Rows (speed-ups: ratio = baseline_s / probe_s, higher is better):

* `cache serve vs recompute`: `ResultStore.get_or_compute` on a stored key, as a page re-render calls it (the
  store's in-memory copy, checked against the database file's size and mtime) vs the same call on a fresh key
  (the probe's computation + the store write + read-back), with the payload of a real probe run: the induction
  scan, the page's default config (small sizes for big models with --quick). Target >= 50.
* `cache first serve vs recompute`: the first serve in a new process: a new `ResultStore` (schema check) and a
  DuckDB read + Parquet decode of the run, vs the same recompute.
* `cache serve vs recompute, with run key`: the same, plus building the run key from `model_identity` (which hashes
  a local model folder's weights), as the dashboard and the CLI do on every call. Target >= 50.
"""

from __future__ import annotations

import itertools
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from bench import models as bench_models
from bench.timing import peak_extra_mb, seconds
from cache import Payload, ResultStore, RunKey, payload_from
from probes.induction import scores
from probes.models import EMBEDDED_MODEL_NAME, model_identity

SERVE_TARGET = ">= 50"


def probe_computation(model, model_label: str, quick: bool) -> tuple[dict, Callable[[], Payload], str]:
    """(config dict, compute -> Payload, description) of a realistic run for the store: the induction scan."""
    first = next(model.parameters())
    device, dtype = str(first.device), str(first.dtype).removeprefix("torch.")
    if model_label == EMBEDDED_MODEL_NAME or not quick:
        cfg = scores.ScanConfig()  # the page's default run
    else:
        cfg = scores.ScanConfig(seq_len=20, n_seqs=2, copying=False)  # keeps a quick run of a big model short
    config = asdict(cfg)

    def compute() -> Payload:
        return payload_from(scores.run(model, cfg), device, dtype)

    return config, compute, f"induction scan {config}"


def serve_rows(model, model_label: str, quick: bool) -> list[dict]:
    first = next(model.parameters())
    spec = bench_models.spec_for(model_label, device=str(first.device.type))
    probe, version = scores.NAME, scores.VERSION
    config, compute, description = probe_computation(model, model_label, quick)
    recompute_repeats, serve_repeats = (3, 12) if quick else (5, 30)
    with tempfile.TemporaryDirectory(prefix="assoclens-bench-cache-") as folder:
        store = ResultStore(Path(folder) / "results.duckdb")
        identity = model_identity(spec)
        key = RunKey.build(probe, version, identity, config)
        stored = store.get_or_compute(key, compute)
        nonces = itertools.count()

        def recompute():  # a cache miss: same computation, a key the store has not seen
            fresh = RunKey.build(probe, version, identity, {**config, "bench_nonce": next(nonces)})
            run = store.get_or_compute(fresh, compute)
            if run.cached:
                raise RuntimeError("a fresh key was served from the store")
            return run

        def serve():
            run = store.get_or_compute(key, compute)
            if not run.cached:
                raise RuntimeError("the stored key was recomputed instead of served")
            return run

        def first_serve():  # what a new CLI process or a restarted dashboard does
            run = ResultStore(store.path).get(key)
            if run is None:
                raise RuntimeError("the stored key was not found by a new store")
            return run

        def build_key():
            return RunKey.build(probe, version, model_identity(spec), config)

        serve()  # warm-up (filling the store warmed recompute up)
        recompute_times, serve_times, first_times, key_times = [], [], [], []
        for _ in range(recompute_repeats):  # interleaved, so a change in the machine's load hits both sides
            recompute_times.append(seconds(recompute))
            serve_times += [seconds(serve) for _ in range(serve_repeats // recompute_repeats)]
            first_times.append(seconds(first_serve))
            key_times.append(seconds(build_key))
        times = (recompute_times, serve_times, first_times, key_times)
        recompute_s, serve_s, first_s, key_s = map(statistics.median, times)
        recompute_mb, serve_mb = peak_extra_mb(recompute), peak_extra_mb(serve)
    payload_kb = sum(frame.memory_usage(deep=True).sum() for frame in stored.tables.values()) / 1024
    payload = f"{description}; {len(stored.tables)} tables, {payload_kb:.0f} KiB in memory"
    base = {"probe_peak_mb": serve_mb, "baseline_peak_mb": recompute_mb, "target": SERVE_TARGET}
    return [
        {
            **base,
            "name": "cache serve vs recompute",
            "ratio": recompute_s / serve_s,
            "probe_s": serve_s,
            "baseline_s": recompute_s,
            "repeats": serve_repeats,
            "note": f"speed-up (higher is better) of get_or_compute on a stored key vs a fresh key; {payload}",
        },
        {
            **base,
            "name": "cache first serve vs recompute",
            "ratio": recompute_s / first_s,
            "probe_s": first_s,
            "baseline_s": recompute_s,
            "repeats": recompute_repeats,
            "target": None,
            "note": "speed-up of the first serve in a new process (new ResultStore, DuckDB read, Parquet decode)",
        },
        {
            **base,
            "name": "cache serve vs recompute, with run key",
            "ratio": (key_s + recompute_s) / (key_s + serve_s),
            "probe_s": key_s + serve_s,
            "baseline_s": key_s + recompute_s,
            "repeats": serve_repeats,
            "key_s": key_s,
            "note": f"speed-up including the run key (model_identity hashes the model folder: {key_s:.3g} s), "
            "the path every page render and CLI call takes",
        },
    ]


def rows(model, model_label: str, quick: bool) -> list[dict]:
    return serve_rows(model, model_label, quick)
