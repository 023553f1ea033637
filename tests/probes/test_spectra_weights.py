"""Any-model spectra: the bridge's W_V/W_O/W_in/W_out read correctly, products exact, missing weights reported."""

from __future__ import annotations

import json
import types

import pytest
import torch

from probes.spectra import weights
from probes.spectra.weights import WeightsConfig, expand_kv_heads, product_svdvals


@pytest.fixture(scope="module")
def result(tiny_model) -> weights.WeightsResult:
    return weights.run(tiny_model, WeightsConfig())


def test_every_layer_has_every_matrix(result, tiny_model):
    n_layers, n_heads = tiny_model.cfg.n_layers, tiny_model.cfg.n_heads
    counts = result.metrics.groupby("matrix").size()
    for matrix in ("W_V", "W_O", "W_VO_sum", "W_in", "W_out"):
        assert counts[matrix] == n_layers
    assert counts["W_VO"] == n_layers * n_heads
    assert "W_gate" not in counts  # GPT-2's MLP is not gated
    assert result.missing.empty
    per_head = result.metrics[result.metrics["matrix"] == "W_VO"]
    assert (per_head["n"] == tiny_model.cfg.d_head).all()
    json.dumps(result.summary(), allow_nan=False)


def test_spectra_match_the_raw_hugging_face_weights(result, tiny_model):
    """GPT-2 keeps V in the last third of c_attn (Conv1D, in x out) and W_O in c_proj."""
    hf_attn = tiny_model.original_model.transformer.h[1].attn
    d_model, d_head = tiny_model.cfg.d_model, tiny_model.cfg.d_head
    w_v = hf_attn.c_attn.weight[:, 2 * d_model :].detach()  # (d_model, n_heads * d_head)
    w_o = hf_attn.c_proj.weight.detach()  # (n_heads * d_head, d_model)
    spectrum = result.spectrum[result.spectrum["layer"] == 1]

    def values(matrix: str, head: int = -1) -> torch.Tensor:
        rows = spectrum[(spectrum["matrix"] == matrix) & (spectrum["head"] == head)].sort_values("index")
        return torch.tensor(rows["singular_value"].to_numpy())

    expected_v = torch.linalg.svdvals(w_v.double())
    assert torch.allclose(values("W_V"), expected_v, rtol=1e-4, atol=1e-6)
    head = 2
    product = w_v[:, head * d_head : (head + 1) * d_head].double() @ w_o[head * d_head : (head + 1) * d_head].double()
    assert torch.allclose(values("W_VO", head), torch.linalg.svdvals(product)[:d_head], rtol=1e-4, atol=1e-7)
    assert torch.allclose(values("W_VO_sum"), torch.linalg.svdvals(w_v.double() @ w_o.double()), rtol=1e-4, atol=1e-6)
    w_in = tiny_model.original_model.transformer.h[1].mlp.c_fc.weight.detach().double()
    assert torch.allclose(values("W_in"), torch.linalg.svdvals(w_in), rtol=1e-4, atol=1e-6)


def test_product_svdvals_is_exact_for_low_rank_factors():
    left, right = torch.randn(32, 4, dtype=torch.float64), torch.randn(4, 24, dtype=torch.float64)
    expected = torch.linalg.svdvals(left @ right)[:4]
    assert torch.allclose(product_svdvals(left, right), expected, rtol=1e-4)


def test_grouped_query_heads_are_repeated_in_order():
    kv = torch.arange(2.0).reshape(2, 1, 1).expand(2, 3, 3)
    expanded = expand_kv_heads(kv, 4)
    assert expanded[:, 0, 0].tolist() == [0.0, 0.0, 1.0, 1.0]
    with pytest.raises(ValueError):
        expand_kv_heads(kv, 3)


class _Broken:
    @property
    def W_V(self):
        raise NotImplementedError("this architecture fuses V with something else")


def test_missing_weights_are_listed_not_fatal(tiny_model):
    """A model whose attention has no readable W_V and whose MLP has no W_out still yields the rest."""
    real = tiny_model.blocks[0]
    attn = types.SimpleNamespace(W_O=real.attn.W_O)
    attn_broken = _Broken()
    mlp = types.SimpleNamespace(W_in=real.mlp.W_in)
    fake = types.SimpleNamespace(
        blocks=[types.SimpleNamespace(attn=attn, mlp=mlp), types.SimpleNamespace(attn=attn_broken, mlp=mlp)]
    )
    result = weights.run(fake)
    assert set(result.metrics["matrix"]) == {"W_O", "W_in"}
    reasons = result.missing.set_index(["layer", "matrix"])["reason"]
    assert "AttributeError" in reasons[(0, "W_V")] and "NotImplementedError" in reasons[(1, "W_V")]
    assert "W_out" in set(result.missing["matrix"])
    assert result.summary()["missing"]


def test_model_without_blocks_is_a_clear_error():
    with pytest.raises(ValueError, match="no transformer blocks"):
        weights.run(types.SimpleNamespace(blocks=[]))


def test_layer_selection(tiny_model):
    result = weights.run(tiny_model, WeightsConfig(layers=(1,), per_head=False))
    assert set(result.metrics["layer"]) == {1} and "W_VO" not in set(result.metrics["matrix"])
    with pytest.raises(ValueError, match="layers"):
        weights.run(tiny_model, WeightsConfig(layers=(7,)))
