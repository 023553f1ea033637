"""Poisoned-context probe: Rescorla-Wagner curves of how inappropriate context shifts answers (METHODS.md §3).

Modules: `testbed` (import and validation of uploads), `contexts` (prompt building), `scoring` (batched forced
choice), `rescorla_wagner` (the RW model, its fit and a sequential variant), `probe` (the curve and explore runs).
"""

from probes.poisoned.probe import (
    EXPLORE_NAME,
    EXPLORE_VERSION,
    NAME,
    VERSION,
    CurveConfig,
    CurveResult,
    CurveShard,
    ExploreConfig,
    ExploreInput,
    ExploreResult,
    explore,
    merge_shards,
    prepare,
    run,
    score_shard,
    shard_ranges,
)
from probes.poisoned.rescorla_wagner import RWFit, fit_rw, rw_curve
from probes.poisoned.testbed import Testbed, TestbedError, TestbedItem, load_testbed, load_testbed_file

__all__ = [
    "EXPLORE_NAME",
    "EXPLORE_VERSION",
    "NAME",
    "VERSION",
    "CurveConfig",
    "CurveResult",
    "CurveShard",
    "ExploreConfig",
    "ExploreInput",
    "ExploreResult",
    "RWFit",
    "Testbed",
    "TestbedError",
    "TestbedItem",
    "explore",
    "fit_rw",
    "load_testbed",
    "load_testbed_file",
    "merge_shards",
    "prepare",
    "run",
    "rw_curve",
    "score_shard",
    "shard_ranges",
]
