"""The one wiring layer: how a page, the CLI (and later a job or a Ray worker) runs a probe.

* `REGISTRY`: every probe by name: version, config type, how to digest its inputs, and how to compute it.
* `Request`: a probe name, its config, the model (a `ModelSpec`, or None for the probes that train their own small
  model) and the probe's inputs. It produces the run key, so the same request gives the same key from any caller.
* `lookup(store, request)`: the stored run, or None. `run(store, request, ...)`: serve from the store, or load the
  model, compute while holding it exclusively (`probes.models.exclusive`: no other session's hooks meet this run's
  forward passes), store and return the run. Its two halves are `compute_payload` (computes, touches no store: what
  a Ray worker runs) and `store_payload` (the driver's write); `probes/executors.py` runs many requests with them.

Configs arrive with their defaults resolved (`VectorConfig.resolved`, `SweepConfig.resolved`), because the key
describes the config. This module, `probes/executors.py` and `probes/cli/` are the only places in `probes/` that import
`cache/`; the computation modules stay pure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import NamedTuple

from cache import Payload, ResultStore, RunKey, StoredRun, digest_json, payload_from
from probes import poisoned, spectra, steering
from probes.induction import attention, emergence, scores
from probes.models import ModelSpec, describe, exclusive, load_model, load_tokenizer, model_identity, tuned_folder
from probes.poisoned import mitigate as rw_steering
from probes.poisoned.probe import EVERY_POSITION, SteeredTestbed
from probes.spectra import memory, transformer, weights

Progress = Callable[[float, str], None]
OnRecord = Callable[[dict], None]


class SweepInputs(NamedTuple):
    vectors: steering.SteeringVectors
    sets: steering.PromptSets


class LadderInputs(NamedTuple):
    vectors: steering.SteeringVectors
    vocabulary: frozenset[str]


@dataclass(frozen=True)
class Context:
    """What a probe's compute function receives."""

    model: object | None  # the loaded model; None for probes that train their own
    config: object
    inputs: object
    progress: Progress
    on_record: OnRecord | None
    model_label: str  # the model's id as the store records it
    spec: ModelSpec | None = None  # what the request names (probes that load their own copy read it)
    run_id: str = ""  # the run's id (a probe that writes files outside the store names them after it)


def no_inputs(inputs: object) -> None:
    """The input digest of probes whose config says everything (scan, training, synthetic spectra)."""
    return None


def curve_input_digest(inputs: poisoned.Testbed | SteeredTestbed) -> str:
    """The poisoned curve's input digest: the testbed's own digest when nothing steers (so an unsteered run keeps
    the key it always had), else a digest over the testbed, the vector's safetensors and the strength."""
    steer = inputs.steer if isinstance(inputs, SteeredTestbed) else None
    testbed = inputs.testbed if isinstance(inputs, SteeredTestbed) else inputs
    if steer is None:
        return testbed.digest
    return digest_json(
        {"testbed": testbed.digest, "vector": steer.vectors.digest(), "strength": float(steer.strength) + 0.0,
         "steered_positions": EVERY_POSITION}
    )  # fmt: skip


@dataclass(frozen=True)
class Probe:
    """One registry row."""

    name: str
    version: str
    config_type: type
    result_type: type  # the probe's result class; its from_stored(tables, summary, files) rebuilds a stored run
    compute: Callable[[Context], object]  # -> a result with to_tables(), summary() and optionally files()
    digest_inputs: Callable[[object], str | None] = no_inputs
    own_model: dict | None = None  # model identity of probes that build their own model (then no ModelSpec)
    placement: tuple[str, str] = ("cpu", "float32")  # device / dtype label of own-model probes
    trains_copy: bool = False  # loads a private trainable copy of the named model itself (never the shared one)
    # Probes whose work splits into shards of input items (a testbed curve): the ranges for a shard size, one
    # shard's computation, and the merge of the shards' results (CurveShard-like objects) into the probe's result.
    shard_ranges: Callable[[object, object, int], list[tuple[int, int]]] | None = None
    compute_shard: Callable[[Context, tuple[int, int]], object] | None = None
    merge_shards: Callable[[object, list[Payload]], object] | None = None


PROBES = (
    Probe(scores.NAME, scores.VERSION, scores.ScanConfig, scores.ScanResult,
          lambda c: scores.run(c.model, c.config, c.progress)),
    Probe(attention.NAME, attention.VERSION, attention.TextAttentionConfig, attention.TextAttentionResult,
          lambda c: attention.run(c.model, c.config, c.progress)),
    Probe(emergence.NAME, emergence.VERSION, emergence.TrainConfig, emergence.EmergenceResult,
          lambda c: emergence.train(c.config, c.progress, c.on_record), own_model=emergence.SCRATCH_MODEL_IDENTITY),
    Probe(steering.VECTORS_NAME, steering.VECTORS_VERSION, steering.VectorConfig, steering.VectorResult,
          lambda c: steering.build_vectors(c.model, c.config, c.inputs, c.model_label, c.progress),
          digest_inputs=lambda sets: digest_json(sets.vector_inputs())),
    Probe(steering.NAME, steering.VERSION, steering.SweepConfig, steering.SweepResult,
          lambda c: steering.run_sweep(c.model, c.config, c.inputs.vectors, c.inputs.sets, c.progress),
          digest_inputs=lambda i: digest_json({"vector": i.vectors.digest(), **i.sets.evaluation_inputs()})),
    Probe(steering.LADDER_NAME, steering.LADDER_VERSION, steering.LadderConfig, steering.LadderResult,
          lambda c: steering.run_ladder(c.model, c.config, c.inputs.vectors, set(c.inputs.vocabulary), c.progress),
          digest_inputs=lambda i: digest_json({"vector": i.vectors.digest(), "vocabulary": sorted(i.vocabulary)})),
    Probe(poisoned.NAME, poisoned.VERSION, poisoned.CurveConfig, poisoned.CurveResult,
          lambda c: poisoned.run(c.model, c.config, c.inputs, c.progress, c.model_label),
          digest_inputs=curve_input_digest,
          shard_ranges=lambda inputs, config, size: poisoned.shard_ranges(inputs, config, size),
          compute_shard=lambda c, item_range: poisoned.score_shard(
              c.model, poisoned.prepare(c.model, c.config, c.inputs, c.model_label), c.config, item_range, c.progress),
          merge_shards=lambda config, parts: poisoned.merge_shards(
              config, [poisoned.CurveShard.from_stored(p.tables, p.summary, p.files) for p in parts])),
    Probe(poisoned.EXPLORE_NAME, poisoned.EXPLORE_VERSION, poisoned.ExploreConfig, poisoned.ExploreResult,
          lambda c: poisoned.explore(c.model, c.config, c.inputs, c.progress),
          digest_inputs=lambda data: digest_json(data.as_dict())),
    Probe(rw_steering.NAME, rw_steering.VERSION, rw_steering.MitigateConfig, rw_steering.TuningResult,
          lambda c: rw_steering.fine_tune(c.spec, c.inputs, c.config, rw_steering.revision_name(c.run_id), c.progress),
          digest_inputs=lambda testbed: testbed.digest, trains_copy=True),
    Probe(memory.NAME, memory.VERSION, memory.MemoryConfig, memory.MemoryResult,
          lambda c: memory.run(c.config, c.progress),
          own_model=spectra.SYNTHETIC_MODEL_IDENTITY, placement=("cpu", "float32/float64")),
    Probe(transformer.NAME, transformer.VERSION, transformer.TransformerConfig, transformer.TransformerResult,
          lambda c: transformer.run(c.config, c.progress),
          own_model=spectra.SYNTHETIC_MODEL_IDENTITY, placement=("cpu", "float32/float64")),
    Probe(weights.NAME, weights.VERSION, weights.WeightsConfig, weights.WeightsResult,
          lambda c: weights.run(c.model, c.config, c.progress)),
)  # fmt: skip
REGISTRY: dict[str, Probe] = {probe.name: probe for probe in PROBES}


@dataclass(frozen=True)
class Request:
    """One probe run as asked for: the same request gives the same run key from a page, the CLI or a job."""

    probe: str
    config: object
    spec: ModelSpec | None = None  # None only for probes that build their own model
    inputs: object = None

    def __post_init__(self) -> None:
        entry = REGISTRY.get(self.probe)
        if entry is None:
            raise ValueError(f"Unknown probe {self.probe!r}; known: {', '.join(sorted(REGISTRY))}.")
        if not isinstance(self.config, entry.config_type):
            raise TypeError(f"{self.probe} takes a {entry.config_type.__name__}, got {type(self.config).__name__}.")
        if (entry.own_model is None) != (self.spec is not None):
            raise ValueError(f"{self.probe} {'needs a model' if entry.own_model is None else 'trains its own model'}.")

    @property
    def entry(self) -> Probe:
        return REGISTRY[self.probe]

    def identity(self) -> dict:
        return self.entry.own_model if self.spec is None else model_identity(self.spec)

    def input_digest(self) -> str | None:
        return self.entry.digest_inputs(self.inputs)

    def key(self) -> RunKey:
        return RunKey.build(self.probe, self.entry.version, self.identity(), self.config, self.input_digest())


def lookup(store: ResultStore, request: Request) -> StoredRun | None:
    """The stored run for this request, computing nothing."""
    return store.get(request.key())


def result_of(run: StoredRun):
    """A stored run as its probe's own typed result (`ResultType.from_stored`), so callers read attributes, not
    table names."""
    entry = REGISTRY.get(run.probe)
    if entry is None:
        raise ValueError(f"Run {run.run_id[:12]} is of an unknown probe {run.probe!r}.")
    return entry.result_type.from_stored(run.tables, run.summary, run.files)


def run(
    store: ResultStore,
    request: Request,
    load: Callable[[ModelSpec], object] = load_model,
    progress: Progress | None = None,
    on_record: OnRecord | None = None,
    refresh: bool = False,
) -> StoredRun:
    """Serve the request from the store, or compute it (model held exclusively), store it and return the run.

    `load` turns a spec into a loaded model (the pages pass their process-wide cached loader); `refresh` recomputes
    even when a stored run exists. Nothing is stored when the computation raises."""
    key = request.key()
    if not refresh and (found := store.get(key)) is not None:
        return found
    payload, duration_s = compute_payload(request, load, progress, on_record, run_id=key.run_id())
    return store.put(key, payload, duration_s=duration_s)


def compute_payload(
    request: Request,
    load: Callable[[ModelSpec], object] = load_model,
    progress: Progress | None = None,
    on_record: OnRecord | None = None,
    run_id: str | None = None,
) -> tuple[Payload, float]:
    """Compute the request without touching the store -> (payload, seconds it took).

    What a Ray worker runs: it never sees DuckDB, the driver stores the payload (`store_payload`). `run_id` is the
    request's run id when the caller already has it (else it is computed from the request)."""
    report = progress or (lambda fraction, message="": None)
    started = time.perf_counter()
    payload = _compute(request, run_id or request.key().run_id(), load, report, on_record)
    return payload, time.perf_counter() - started


def shard_ranges(request: Request, items_per_shard: int | None) -> list[tuple[int, int]] | None:
    """The item ranges a request splits into at this shard size, or None when it does not split (its probe has no
    shards, no size is set, or everything fits one shard)."""
    entry = request.entry
    if entry.shard_ranges is None or not items_per_shard:
        return None
    ranges = entry.shard_ranges(request.inputs, request.config, items_per_shard)
    return ranges if len(ranges) > 1 else None


def compute_shard_payload(
    request: Request, item_range: tuple[int, int], load: Callable[[ModelSpec], object] = load_model
) -> tuple[Payload, float]:
    """One shard of a splittable request (what a Ray worker runs for it) -> (its payload, seconds)."""
    started = time.perf_counter()
    shard = request.entry.compute_shard
    payload = _compute(request, "", load, lambda fraction, message="": None, None, lambda c: shard(c, item_range))
    return payload, time.perf_counter() - started


def merge_shard_payloads(request: Request, parts: list[Payload]) -> Payload:
    """The request's payload from its shards' payloads (the driver's side; no model needed)."""
    result = request.entry.merge_shards(request.config, parts)
    return payload_from(result, parts[0].device, parts[0].dtype)


def store_payload(store: ResultStore, request: Request | RunKey, payload: Payload, duration_s: float) -> StoredRun:
    """Store a payload computed elsewhere (`compute_payload`, maybe on another machine) under the request's key."""
    key = request if isinstance(request, RunKey) else request.key()
    return store.put(key, payload, duration_s=duration_s)


def _compute(request: Request, run_id: str, load, progress: Progress, on_record: OnRecord | None, compute=None):
    """The request's payload, its model loaded and held exclusively where it needs one; `compute(context)` is the
    probe's own computation unless given (a shard of it)."""
    entry = request.entry
    compute = compute or entry.compute
    label = request.identity()["model_id"]
    if request.spec is None:
        context = Context(None, request.config, request.inputs, progress, on_record, label, None, run_id)
        return payload_from(compute(context), *entry.placement)
    placement = describe(request.spec)
    if entry.trains_copy:
        context = Context(None, request.config, request.inputs, progress, on_record, label, request.spec, run_id)
        return payload_from(compute(context), placement["device"], placement["dtype"])
    model = load(request.spec)
    with exclusive(model):  # another session's hooks never meet this run's forward passes
        context = Context(model, request.config, request.inputs, progress, on_record, label, request.spec, run_id)
        result = compute(context)
    return payload_from(result, placement["device"], placement["dtype"])


class Mitigation(NamedTuple):
    """An RW-Steering mitigation: the held-out curve before, the fine-tuning run, the held-out curve after."""

    before: StoredRun
    tuning: StoredRun
    after: StoredRun
    tuned: ModelSpec  # the tuned revision, loadable by every probe


class MitigationPlan(NamedTuple):
    """The three requests of a mitigation, known before anything runs (the tuned revision's name comes from the
    tuning request's key; the after-curve's request can be keyed only once that revision exists)."""

    before: Request  # the base model's curve on the held-out items
    tuning: Request  # RW-Steering fine-tuning on the train items
    tuned: ModelSpec  # the revision the tuning saves
    after_config: poisoned.CurveConfig  # the before-curve's config with judge_first
    held_out: poisoned.Testbed

    def after(self) -> Request:
        return Request(poisoned.NAME, self.after_config, self.tuned, self.held_out)

    def tuned_exists(self) -> bool:
        return tuned_folder(self.tuned.name, str(self.tuned.revision)) is not None


def plan_mitigation(
    spec: ModelSpec, testbed: poisoned.Testbed, tuning: rw_steering.MitigateConfig, curve: poisoned.CurveConfig
) -> MitigationPlan:
    """Split the testbed (by question, seeded) and name the requests: every held-out item is scored, with the same
    curve settings before and after (after: the model's judgement first)."""
    rw_steering.validate_config(tuning)
    split = rw_steering.split_items(testbed, load_tokenizer(spec), tuning)
    curve = replace(curve, max_items_per_category=len(split.held_out.items), categories=(), judge_first=False)
    tune = Request(rw_steering.NAME, tuning, spec, testbed)
    tuned = replace(spec, revision=rw_steering.revision_name(tune.key().run_id()))
    before = Request(poisoned.NAME, curve, spec, split.held_out)
    return MitigationPlan(before, tune, tuned, replace(curve, judge_first=True), split.held_out)


def stored_mitigation(store: ResultStore, plan: MitigationPlan) -> Mitigation | None:
    """The mitigation's three stored runs (and its model folder), or None when any is missing."""
    before, tuning = lookup(store, plan.before), lookup(store, plan.tuning)
    if before is None or tuning is None or not plan.tuned_exists():
        return None
    after = lookup(store, plan.after())
    return None if after is None else Mitigation(before, tuning, after, plan.tuned)


def mitigate(
    store: ResultStore,
    plan: MitigationPlan,
    load: Callable[[ModelSpec], object] = load_model,
    progress: Progress | None = None,
    refresh: bool = False,
) -> Mitigation:
    """Measure the held-out curve, fine-tune (RW-Steering), measure the tuned model's held-out curve with its
    judgement first: three stored runs. A stored tuning run whose model folder is gone is redone."""
    report = progress or (lambda fraction, message="": None)

    def stage(low: float, high: float, name: str) -> Progress:
        return lambda fraction, message="": report(low + (high - low) * fraction, f"{name}: {message}")

    before = run(store, plan.before, load, stage(0.0, 0.2, "before"), refresh=refresh)
    missing = not plan.tuned_exists()
    tuning = run(store, plan.tuning, load, stage(0.2, 0.8, "fine-tuning"), refresh=refresh or missing)
    after = run(store, plan.after(), load, stage(0.8, 1.0, "after"), refresh=refresh or missing)
    return Mitigation(before, tuning, after, plan.tuned)
