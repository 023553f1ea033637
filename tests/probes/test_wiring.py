"""The wiring layer: one request type, one key, one get-or-compute for pages, the CLI and later jobs."""

from __future__ import annotations

import dataclasses

import pytest

from cache import ResultStore
from probes import wiring
from probes.induction import emergence, scores
from probes.models import ModelSpec, load_model
from probes.spectra import memory
from probes.wiring import REGISTRY, Request


def test_every_registered_probe_keys_its_default_request() -> None:
    spec = ModelSpec(name="organism")
    plain = [probe for probe in REGISTRY.values() if probe.digest_inputs is wiring.no_inputs]
    assert {probe.name for probe in plain} >= {scores.NAME, emergence.NAME, memory.NAME}
    for probe in plain:
        name = probe.name
        config = (
            probe.config_type(text="a b a b", layer=1, head=0) if name == "induction-attention" else probe.config_type()
        )
        request = Request(name, config, None if probe.own_model else spec)
        assert request.key().run_id() == Request(name, config, request.spec).key().run_id()
        assert request.key().input_digest is None


def test_bad_requests_are_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="Unknown probe"):
        Request("no-such-probe", scores.ScanConfig(), ModelSpec(name="organism"))
    with pytest.raises(TypeError, match="ScanConfig"):
        Request(scores.NAME, memory.MemoryConfig(), ModelSpec(name="organism"))
    with pytest.raises(ValueError, match="needs a model"):
        Request(scores.NAME, scores.ScanConfig())
    with pytest.raises(ValueError, match="trains its own model"):
        Request(emergence.NAME, emergence.TrainConfig(), ModelSpec(name="organism"))


def test_run_computes_once_then_serves_and_refresh_recomputes(tiny_model_dir, tmp_path) -> None:
    store = ResultStore(tmp_path / "r.duckdb")
    request = Request(scores.NAME, scores.ScanConfig(seq_len=8, n_seqs=2), ModelSpec(str(tiny_model_dir), device="cpu"))
    loads: list[ModelSpec] = []

    def load(spec: ModelSpec):
        loads.append(spec)
        return load_model(spec)

    fractions: list[float] = []
    first = wiring.run(store, request, load=load, progress=lambda f, m="": fractions.append(f))
    second = wiring.run(store, request, load=load)
    assert not first.cached and second.cached and first.run_id == second.run_id == request.key().run_id()
    assert len(loads) == 1 and fractions  # the model is loaded only on a miss; progress reached the caller
    assert wiring.lookup(store, request).run_id == first.run_id
    assert not wiring.run(store, request, load=load, refresh=True).cached and len(loads) == 2


def test_a_failing_computation_stores_nothing(tiny_model_dir, tmp_path) -> None:
    store = ResultStore(tmp_path / "r.duckdb")
    bad = Request(scores.NAME, scores.ScanConfig(seq_len=0), ModelSpec(str(tiny_model_dir), device="cpu"))
    with pytest.raises(ValueError):
        wiring.run(store, bad)
    assert store.list_runs().empty


def test_own_model_probes_run_without_a_model(tmp_path) -> None:
    store = ResultStore(tmp_path / "r.duckdb")
    cfg = dataclasses.replace(memory.MemoryConfig(), n_classes=8, d_model=8, steps=2, optimizers=("adam",))
    run = wiring.run(store, Request(memory.NAME, cfg), load=lambda spec: pytest.fail("no model may be loaded"))
    assert run.model_id == "synthetic" and not run.cached
