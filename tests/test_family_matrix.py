"""The model-family matrix (probes/families.py): every family loads, matches Hugging Face, and runs every probe.

For each family a tiny random-initialised model (2 layers, d_model 64, byte-level BPE tokenizer) is built once in
a temporary folder and loaded through `probes.models.load_model` (TransformerBridge). Checks:

* parity with Hugging Face transformers run directly on the same folder:
  - attention patterns (`blocks.{l}.attn.hook_pattern`) equal eager `output_attentions=True`;
  - adding a vector at `blocks.{l}.hook_resid_post` gives the logits of a forward hook adding it to HF decoder
    layer l's output;
  - `copying_scores` equals Elhage's sum(lambda)/sum(|lambda|) of the full (vocab x vocab) OV circuit built here
    from the HF weights alone, with every norm on the OV path folded (input norm, Gemma's 1 + w, post-attention
    norms, final norm; LayerNorm's centring);
* the probes through the CLI and the result store (small settings): induction scan, steering sweep and poisoned
  curve on the English defaults, weight spectra.

A check a family is declared to fail (`Family.expected_failures`, with the measured reason) is `xfail(strict=True)`;
the README's "Supported model families" table is generated from the same declarations and checked here.
"""

from __future__ import annotations

import json
import operator
from pathlib import Path

import numpy as np
import pytest
import torch

from probes.families import CHECKS, FAMILIES, family, readme_section, readme_section_in, save_tiny_family_model
from probes.hook_names import attn_pattern, resid_post

REPO_ROOT = Path(__file__).resolve().parent.parent
ENGLISH_DIR = REPO_ROOT / "probes" / "data" / "english"
ENGLISH_STEERING = ENGLISH_DIR / "steering_prompts.json"
ENGLISH_TESTBED = ENGLISH_DIR / "testbed.json"
TEXT = "The capital of France is Paris. In my dream the ocean was made of glass, and the moon sang to the hills."


def cases(check: str) -> list:
    """One pytest param per family; xfail(strict) where the matrix declares this check fails."""
    params = []
    for spec in FAMILIES:
        reason = spec.expected(check)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(spec.key, marks=marks, id=spec.key))
    return params


class Built:
    """Each family's folder, bridge and eager HF model, built once for the module."""

    def __init__(self, root: Path):
        self.root = root
        self.folders: dict[str, Path] = {}
        self.bridges: dict[str, object] = {}
        self.hf_models: dict[str, object] = {}

    def folder(self, key: str) -> Path:
        if key not in self.folders:
            self.folders[key] = save_tiny_family_model(key, self.root / key)
        return self.folders[key]

    def bridge(self, key: str):
        if key not in self.bridges:
            from probes.models import ModelSpec, load_model

            self.bridges[key] = load_model(ModelSpec(name=str(self.folder(key)), device="cpu"))
        return self.bridges[key]

    def hf(self, key: str):
        if key not in self.hf_models:
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(self.folder(key), attn_implementation="eager")
            self.hf_models[key] = model.eval()
        return self.hf_models[key]

    def ids(self, key: str) -> torch.Tensor:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(self.folder(key))
        return torch.tensor([[tokenizer.bos_token_id, *tokenizer(TEXT, add_special_tokens=False)["input_ids"]]])


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy 2-core machine OpenMP's spinning threads
    make every forward pass 10x slower; one thread for this module, restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return Built(tmp_path_factory.mktemp("families"))


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("family-store") / "results.duckdb")


# --- the matrix and the README ---------------------------------------------------------------------------


def test_matrix_declares_only_known_checks_and_distinct_families():
    assert len({spec.key for spec in FAMILIES}) == len(FAMILIES) >= 9
    for spec in FAMILIES:
        assert set(spec.expected_failures) <= set(CHECKS), spec.key
        assert spec.config.get("num_hidden_layers", spec.config.get("n_layer")) == 2
        assert spec.config.get("hidden_size", spec.config.get("n_embd")) == 64


def test_readme_table_is_generated_from_the_matrix():
    section = readme_section_in((REPO_ROOT / "README.md").read_text())
    assert section is not None, "README.md has no '## Supported model families' section"
    assert section == readme_section(), "README table drifted: paste `python -m probes.families --markdown`"


def test_tokenizer_is_byte_level_and_reads_any_english(built: Built):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(built.folder("gpt2"))
    text = "Zebras' naïve quizzes: 42 × ∑ — fine?"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids) == text
    assert len(tokenizer(" the capital of", add_special_tokens=False)["input_ids"]) == 3  # merges learned
    for key in ("qwen2", "qwen3"):
        rendered = AutoTokenizer.from_pretrained(built.folder(key)).apply_chat_template(
            [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False
        )
        assert rendered == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


# --- loading and parity ----------------------------------------------------------------------------------


@pytest.mark.parametrize("key", cases("load"))
def test_loads_through_the_bridge_with_hf_logits(built: Built, key: str):
    bridge, hf = built.bridge(key), built.hf(key)
    ids = built.ids(key)
    assert int(bridge.cfg.n_layers) == 2 and int(bridge.cfg.d_model) == 64
    with torch.no_grad():
        torch.testing.assert_close(bridge(ids), hf(ids).logits, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("key", cases("attention_parity"))
def test_attention_patterns_equal_hf_eager(built: Built, key: str):
    bridge, hf = built.bridge(key), built.hf(key)
    ids = built.ids(key)
    with torch.no_grad():
        _, cache = bridge.run_with_cache(ids)
        reference = hf(ids, output_attentions=True).attentions
    for layer in range(2):
        pattern = cache[attn_pattern(layer)]
        assert pattern.shape == reference[layer].shape == (1, 4, ids.shape[1], ids.shape[1])
        causal = torch.tril(torch.ones(ids.shape[1], ids.shape[1]))
        uniform = causal / causal.sum(-1, keepdim=True)
        distance = (reference[layer] - uniform).abs().sum(-1).mean()  # total variation x 2, mean over rows
        assert distance > 0.3, "near-uniform attention would make this check vacuous"
        torch.testing.assert_close(pattern, reference[layer], atol=2e-5, rtol=1e-4)


def decoder_layers(key: str, hf) -> list:
    return operator.attrgetter(family(key).decoder_layers)(hf)


def add_to_output(vector: torch.Tensor):
    def hook(module, inputs, output):
        if isinstance(output, tuple):
            return (output[0] + vector, *output[1:])
        return output + vector

    return hook


@pytest.mark.parametrize("key", cases("steering_parity"))
def test_resid_post_steering_equals_hf_layer_output_hook(built: Built, key: str):
    bridge, hf = built.bridge(key), built.hf(key)
    ids = built.ids(key)
    vector = 3.0 * torch.randn(64, generator=torch.Generator().manual_seed(1))
    for layer in range(2):
        handle = decoder_layers(key, hf)[layer].register_forward_hook(add_to_output(vector))
        try:
            with torch.no_grad():
                expected = hf(ids).logits
        finally:
            handle.remove()
        with torch.no_grad():
            steered = bridge.run_with_hooks(ids, fwd_hooks=[(resid_post(layer), lambda act, hook: act + vector)])
            plain = bridge(ids)
        assert (expected - plain).abs().max() > 1e-2, "the vector must change the logits"
        torch.testing.assert_close(steered, expected, atol=1e-4, rtol=1e-4)


# Where each family's OV path meets a norm, by HF module names (read from the transformers modeling code):
# (input norm before attention, norm applied to the attention output, final norm, LayerNorm centring, 1 + w).
OV_NORMS = {
    "gpt2": ("ln_1", None, "transformer.ln_f", True, False),
    "gpt_neox": ("input_layernorm", None, "gpt_neox.final_layer_norm", True, False),
    "llama": ("input_layernorm", None, "model.norm", False, False),
    "mistral": ("input_layernorm", None, "model.norm", False, False),
    "qwen2": ("input_layernorm", None, "model.norm", False, False),
    "qwen3": ("input_layernorm", None, "model.norm", False, False),
    "gemma2": ("input_layernorm", "post_attention_layernorm", "model.norm", False, True),  # sandwich norms
    "phi3": ("input_layernorm", None, "model.norm", False, False),
    "olmo2": (None, "post_attention_layernorm", "model.norm", False, False),  # post-norm only
}


def hf_value_output(key: str, hf, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(W_V (n_heads, d_model, d_head) with kv heads shared as HF does, W_O (n_heads, d_head, d_model)) of one
    layer, read from the HF modules, in the orientation x @ W_V, z @ W_O."""
    config = hf.config
    n_heads, d_model = config.num_attention_heads, config.hidden_size
    d_head = getattr(config, "head_dim", None) or d_model // n_heads
    n_kv = getattr(config, "num_key_value_heads", None) or n_heads
    block = decoder_layers(key, hf)[layer]
    if key == "gpt2":  # Conv1D: y = x @ weight, c_attn columns [q | k | v]
        w_v = block.attn.c_attn.weight[:, 2 * d_model :].reshape(d_model, n_heads, d_head).permute(1, 0, 2)
        w_o = block.attn.c_proj.weight.reshape(n_heads, d_head, d_model)
        return w_v, w_o
    if key == "gpt_neox":  # Linear rows per head [q_h | k_h | v_h]
        rows = block.attention.query_key_value.weight.reshape(n_heads, 3 * d_head, d_model)
        w_v = rows[:, 2 * d_head :].transpose(1, 2)
        w_o = block.attention.dense.weight.T.reshape(n_heads, d_head, d_model)
        return w_v, w_o
    attention = block.self_attn
    if key == "phi3":  # fused rows [q (n_heads) | k (n_kv) | v (n_kv)]
        v_rows = attention.qkv_proj.weight[(n_heads + n_kv) * d_head :]
    else:
        v_rows = attention.v_proj.weight
    w_v = v_rows.reshape(n_kv, d_head, d_model).transpose(1, 2).repeat_interleave(n_heads // n_kv, dim=0)
    w_o = attention.o_proj.weight.T.reshape(n_heads, d_head, d_model)
    return w_v, w_o


def hf_copying_scores(key: str, hf) -> np.ndarray:
    """Elhage's statistic from the eigenvalues of the full vocab x vocab OV circuit of each head, HF weights only."""
    input_norm, output_norm, final_norm, centres, offset = OV_NORMS[key]

    def gain(module) -> torch.Tensor:
        return module.weight.detach().double() + (1.0 if offset else 0.0)

    w_e = hf.get_input_embeddings().weight.detach().double()  # (vocab, d_model)
    w_u = hf.get_output_embeddings().weight.detach().double().T  # (d_model, vocab)
    d_model = w_e.shape[1]
    centre = torch.eye(d_model, dtype=torch.float64) - (1.0 / d_model if centres else 0.0)
    unembed = centre @ torch.diag(gain(operator.attrgetter(final_norm)(hf))) @ w_u  # final norm, then W_U
    scores = np.zeros((hf.config.num_hidden_layers, hf.config.num_attention_heads))
    for layer in range(hf.config.num_hidden_layers):
        block = decoder_layers(key, hf)[layer]
        w_v, w_o = (weight.detach().double() for weight in hf_value_output(key, hf, layer))
        into_v = w_e @ centre  # the embedding as the input norm sees it
        if input_norm:
            into_v = into_v @ torch.diag(gain(getattr(block, input_norm)))
        out_of_o = torch.diag(gain(getattr(block, output_norm))) if output_norm else torch.eye(d_model).double()
        for head in range(w_v.shape[0]):
            circuit = into_v @ w_v[head] @ w_o[head] @ out_of_o @ unembed  # (vocab, vocab)
            eigenvalues = torch.linalg.eigvals(circuit)
            scores[layer, head] = float(eigenvalues.sum().real / eigenvalues.abs().sum())
    return scores


@pytest.mark.parametrize("key", cases("copying_parity"))
def test_copying_score_equals_independent_hf_computation(built: Built, key: str):
    from probes.induction.scores import copying_scores

    ours = copying_scores(built.bridge(key))
    reference = hf_copying_scores(key, built.hf(key))
    assert np.ptp(reference) > 0.05, "heads must differ for the comparison to mean anything"
    np.testing.assert_allclose(ours, reference, atol=2e-4)


# --- probes through the CLI and the store ----------------------------------------------------------------


def run_cli(capsys, *argv: str) -> dict:
    from probes.cli import main

    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def stored(db: str, run_id: str, probe: str):
    from cache import ResultStore

    run = ResultStore(db).load(run_id)
    assert run.probe == probe
    return run


def model_args(built: Built, key: str, db: str) -> list[str]:
    return ["--model", str(built.folder(key)), "--device", "cpu", "--db", db, "--json"]


@pytest.mark.parametrize("key", cases("induction"))
def test_induction_scan_cli(built: Built, db: str, capsys, key: str):
    argv = ["induction", "scan", *model_args(built, key, db), "--seq-len", "20", "--n-seqs", "2"]
    first = run_cli(capsys, *argv)
    for score in ("induction", "previous_token", "duplicate_token", "copying"):
        matrix = np.array(first[score], dtype=float)
        assert matrix.shape == (2, 4) and np.isfinite(matrix).all(), score
    assert first["bos_offset"] == 1 and np.isfinite(first["icl_score"])
    assert first["cached"] is False
    second = run_cli(capsys, *argv)
    assert second["cached"] is True and second["run_id"] == first["run_id"]
    stored(db, first["run_id"], "induction")


@pytest.mark.parametrize("key", cases("steering"))
def test_steering_sweep_cli_on_english_defaults(built: Built, db: str, capsys, key: str):
    if not ENGLISH_STEERING.is_file():
        pytest.skip("English defaults not written yet")
    argv = ["steering", "sweep", *model_args(built, key, db), "--n-facts", "4", "--strengths=-1,0,1"]
    out = run_cli(capsys, *argv)
    assert [row["strength"] for row in out["rows"]] == [-1.0, 0.0, 1.0]
    for row in out["rows"]:
        assert 0.0 <= row["faithfulness"] <= 1.0 and 0.0 <= row["creativity"] <= 1.0
    assert out["coverage"] >= 0.99  # byte-level BPE reads any English
    assert out["prompt_sets"] == "english"
    english = json.loads(ENGLISH_STEERING.read_text())
    prompts = [entry["prompt"] if isinstance(entry, dict) else entry for entry in english["faithful"]]
    assert any(prompt in out["example_prompt"] for prompt in prompts), out["example_prompt"]
    stored(db, out["run_id"], "steering")


@pytest.mark.parametrize("key", cases("poisoned"))
def test_poisoned_curve_cli_on_english_testbed(built: Built, db: str, capsys, key: str):
    if not ENGLISH_TESTBED.is_file():
        pytest.skip("English defaults not written yet")
    argv = ["poisoned", "curve", *model_args(built, key, db), "--n-items", "4", "--steps", "2", "--max-items", "2",
            "--bootstrap", "0"]  # fmt: skip
    out = run_cli(capsys, *argv)
    assert Path(out["testbed"]["path"]).resolve() == ENGLISH_TESTBED.resolve()
    assert out["n_items_used"] == 4 and [point["proportion"] for point in out["points"]] == [0.0, 0.5, 1.0]
    assert out["testbed"]["items"] > 0 and out["fits"]
    stored(db, out["run_id"], "poisoned")


@pytest.mark.parametrize("key", cases("spectra"))
def test_weight_spectra_cli(built: Built, db: str, capsys, key: str):
    out = run_cli(capsys, "spectra", "weights", *model_args(built, key, db))
    (model,) = out["models"]
    assert model["n_layers"] == 2
    assert model["missing"] == [] or all(row["matrix"] == "W_gate" for row in model["missing"]), model["missing"]
    for matrix in ("W_V", "W_O", "W_VO", "W_VO_sum", "W_in", "W_out"):
        metrics = model["matrices"][matrix]
        assert metrics["effective_rank"] is not None and metrics["effective_rank"] > 1, matrix
    stored(db, model["run_id"], "spectra-weights")
