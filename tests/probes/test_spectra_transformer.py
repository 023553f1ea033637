"""The small transformer on heavy-tailed facts: data, optimizer assignment, Float32Muon, records."""

from __future__ import annotations

import json

import pytest
import torch

from probes.spectra import transformer
from probes.spectra.transformer import FactsTransformer, Float32Muon, TransformerConfig, make_facts, make_optimizers

TINY = TransformerConfig(
    n_individuals=12,
    n_first_names=4,
    n_last_names=4,
    n_relations=2,
    n_answers=4,
    d_model=32,
    n_heads=2,
    n_layers=1,
    d_mlp=64,
    steps=120,
    batch_size=64,
    log_every=60,
    zipf_exponent=0.0,
)


@pytest.fixture(scope="module")
def result() -> transformer.TransformerResult:
    return transformer.run(TINY)


def test_facts_world_is_consistent():
    cfg = TransformerConfig()
    facts = make_facts(cfg)
    names = set(zip(facts.first.tolist(), facts.last.tolist(), strict=True))
    assert len(names) == cfg.n_individuals  # distinct (first, last) pairs
    assert facts.frequencies.sum().item() == pytest.approx(1.0)
    assert facts.frequencies[0] / facts.frequencies[9] == pytest.approx(10.0)  # Zipf exponent 1
    assert torch.bincount(facts.group).tolist() == [171, 171, 170]
    assert facts.answers.max() < facts.vocab_size and facts.first.max() < cfg.n_first_names


def test_muon_takes_exactly_the_setup_matrices():
    model = FactsTransformer(TINY, make_facts(TINY).vocab_size)
    names = {id(p): n for n, p in model.named_parameters()}
    for setup, expected in [
        ("muon_vo_ffn", {"W_V", "W_O", "W_in", "W_out"}),
        ("muon", {"W_Q", "W_K", "W_V", "W_O", "W_in", "W_out"}),
    ]:
        adam, muon = make_optimizers(model, setup, TINY)
        muon_names = {names[id(p)] for p in muon.param_groups[0]["params"]}
        assert {n.split(".")[2] for n in muon_names} == expected and all(n.endswith(".weight") for n in muon_names)
        adam_names = {names[id(p)] for p in adam.param_groups[0]["params"]}
        assert "embed.weight" in adam_names and not adam_names & muon_names
        assert len(adam_names) + len(muon_names) == len(names)
    assert len(make_optimizers(model, "adam", TINY)) == 1


def test_float32_muon_matches_torch_muon_to_bfloat16_precision():
    torch.manual_seed(0)
    start, grads = torch.randn(24, 40), [torch.randn(24, 40) for _ in range(3)]
    finals = []
    for optimizer_class in (torch.optim.Muon, Float32Muon):
        weight = start.clone().requires_grad_(True)
        optimizer = optimizer_class([weight], lr=0.1, weight_decay=0.05)
        for grad in grads:
            weight.grad = grad.clone()
            optimizer.step()
        finals.append(weight.detach())
    moved = (finals[0] - start).norm()
    assert (finals[0] - finals[1]).norm() / moved < 0.03
    tall = Float32Muon([torch.zeros(40, 24, requires_grad=True)], lr=1.0)
    assert tall.param_groups[0]["lr"] == 1.0  # the lr adjustment is applied per step, not stored


def test_records_and_learning(result):
    cfg = TINY
    n_logs = cfg.steps // cfg.log_every + 1
    assert len(result.accuracy) == len(cfg.setups) * n_logs * 4  # head, middle, tail, all
    final = result.setups.set_index("setup")
    assert (final["all_accuracy"] > 0.5).all()  # 24 facts, chance is 1/4: every setup learns
    first = result.accuracy[result.accuracy["step"] == 0]
    assert (first["accuracy"] < 0.6).all()
    per_head = result.isotropy[result.isotropy["matrix"] == "W_VO"]
    assert len(per_head) == len(cfg.setups) * n_logs * cfg.n_layers * cfg.n_heads
    assert (per_head["n"] == cfg.d_model // cfg.n_heads).all()
    json.dumps(result.summary(), allow_nan=False)


def test_per_head_vo_spectrum_is_the_product_spectrum():
    cfg = TINY
    model = FactsTransformer(cfg, make_facts(cfg).vocab_size)
    isotropy_rows, spectrum_rows = transformer.model_spectra(model, cfg, "adam", 0)
    block, d_head, head = model.blocks[0], cfg.d_model // cfg.n_heads, 1
    w_v, w_o = block.W_V.weight.T.double(), block.W_O.weight.T.double()
    columns = slice(head * d_head, (head + 1) * d_head)
    expected = torch.linalg.svdvals(w_v[:, columns] @ w_o[columns, :])[:d_head]
    got = torch.tensor([r["singular_value"] for r in spectrum_rows if r["matrix"] == "W_VO" and r["head"] == head])
    assert torch.allclose(got.double(), expected, rtol=1e-3)


def test_invalid_config_is_a_value_error():
    with pytest.raises(ValueError, match="setup"):
        transformer.run(TransformerConfig(setups=("lion",)))
    with pytest.raises(ValueError, match="n_individuals"):
        transformer.run(TransformerConfig(n_individuals=10_000))
