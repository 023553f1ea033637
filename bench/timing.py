"""Measurement helpers shared by the benchmark cases: median wall time and peak memory of a callable."""

from __future__ import annotations

import gc
import resource
import statistics
import threading
import time
from collections.abc import Callable

import torch


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def peak_extra_mb(work: Callable[[], object]) -> float:
    """Peak memory `work()` adds above what was in use when it started: CUDA allocator peak on GPU, else RSS
    sampled every millisecond (CPU allocators give no exact peak; the sampling can miss very short spikes)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        work()
        synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    before = _rss_bytes()
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_bytes())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        work()
    finally:
        done.set()
        sampler.join()
    return max(0.0, (max(peak, _rss_bytes()) - before) / 2**20)


def seconds(work: Callable[[], object]) -> float:
    """Wall time of one `work()` call, waiting for the GPU to finish."""
    started = time.perf_counter()
    work()
    synchronize()
    return time.perf_counter() - started


def interleaved_medians(
    probe: Callable[[], object], baseline: Callable[[], object], repeats: int, warmup: int = 1
) -> tuple[float, float]:
    """Median wall times of probe and baseline, run alternately (probe, baseline, probe, ...) after a warm-up of
    each, so a change in the machine's load during the measurement hits both sides alike."""
    for _ in range(warmup):
        probe()
        baseline()
    synchronize()
    probe_times, baseline_times = [], []
    for _ in range(repeats):
        probe_times.append(seconds(probe))
        baseline_times.append(seconds(baseline))
    return statistics.median(probe_times), statistics.median(baseline_times)


def comparison_row(
    name: str,
    probe: Callable[[], object],
    baseline: Callable[[], object],
    repeats: int,
    target: str | None = None,
    higher_is_better: bool = False,
) -> dict:
    """One benchmark row: probe vs baseline medians measured side by side in this run, and their ratio.

    `ratio` is probe_s / baseline_s (lower is better) unless `higher_is_better`, where it is
    baseline_s / probe_s (a throughput ratio, e.g. items/s of the probe over items/s of the baseline).
    """
    probe_s, baseline_s = interleaved_medians(probe, baseline, repeats)
    ratio = baseline_s / probe_s if higher_is_better else probe_s / baseline_s
    return {
        "name": name,
        "ratio": ratio,
        "probe_s": probe_s,
        "baseline_s": baseline_s,
        "probe_peak_mb": peak_extra_mb(probe),
        "baseline_peak_mb": peak_extra_mb(baseline),
        "repeats": repeats,
        "target": target,
    }
