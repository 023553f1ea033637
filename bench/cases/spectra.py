"""Optimizer spectra benchmark: steps per second of each optimizer vs plain SGD on the same model.

Rows (ratio = probe_s / baseline_s, lower is better; the inverse of the steps-per-second ratio):

* `spectra memory: <optimizer> vs SGD` (once, on the first model label only, since it needs no language model):
  30 full-batch steps of the one-layer associative memory (K = d = 64, float64) with SignGD, Adam, Muon
  (torch.optim.Muon, convergent NS 10 steps, bfloat16) and exact-SVD Muon, vs the same 30 steps with SGD
  (--quick: Adam and Muon only).
* `spectra memory probe end to end vs SGD`: `memory.run` for the four default optimizers with every step's
  spectra and probabilities recorded, vs 4 x 30 SGD steps.
* `spectra transformer: <setup> vs SGD` (first model label only): training steps (forward, backward, step) of
  the small heavy-tailed-facts transformer with Adam, Muon (float32 NS), Muon (torch bfloat16 NS) and Muon on
  VO+FFN, vs SGD on every parameter (--quick: Adam and float32 Muon, 3 steps).
* `spectra <model_label> train step: <optimizer> vs SGD`: one training step of the loaded model itself (its
  Hugging Face module, next-token loss on a fixed random batch) with Adam and with Muon (float32 NS) on every 2-D
  hidden matrix (embeddings and unembedding stay on Adam), vs SGD. Skipped with --quick on models with
  d_model >= 512 (one Muon step on GPT-2-small orthogonalises 48 matrices: tens of seconds on 2 CPU cores).
* `spectra <model_label> weight spectra vs bare SVDs`: `weights.run` (reading W_V/W_O/W_in/W_out through the
  bridge, per-head products, metrics, tables) vs `torch.linalg.svdvals` of the same raw matrices.
"""

from __future__ import annotations

import torch

from bench.timing import comparison_row
from probes.runtime import single_thread
from probes.spectra import memory, transformer, weights

FIRST_MODEL_LABEL = "organism"
EMBEDDING_WORDS = ("wte", "wpe", "embed", "lm_head", "unembed")


def rows(model, model_label: str, quick: bool) -> list[dict]:
    """All rows for one model; small models run on one thread (as the probes do), big ones on torch's default."""
    result = []
    if model_label == FIRST_MODEL_LABEL:
        result += memory_rows(quick) + transformer_rows(quick)
    if model.cfg.d_model < 512:
        with single_thread():
            return result + model_train_rows(model, model_label, quick) + [weights_row(model, model_label, quick)]
    return result + model_train_rows(model, model_label, quick) + [weights_row(model, model_label, quick)]


def memory_rows(quick: bool) -> list[dict]:
    cfg = memory.MemoryConfig()
    frequencies = memory.class_frequencies(cfg)
    inputs, outputs = memory.embeddings(cfg)
    repeats = 1 if quick else 5

    def train(name: str):
        return lambda: memory.train(name, cfg, frequencies, inputs, outputs)

    rows = []
    with single_thread():
        for name in ("adam", "muon") if quick else ("signgd", "adam", "muon", "muon_svd"):
            rows.append(
                comparison_row(f"spectra memory: {name} vs SGD (30 steps, K=d=64)", train(name), train("gd"), repeats)
            )
        rows.append(
            comparison_row(
                "spectra memory probe end to end vs SGD (4 optimizers, 30 steps, spectra recorded)",
                lambda: memory._run(cfg, None),
                lambda: [train("gd")() for _ in range(4)],
                1 if quick else 3,
            )
        )
    return rows


def transformer_rows(quick: bool) -> list[dict]:
    cfg = transformer.TransformerConfig()
    facts = transformer.make_facts(cfg)
    n_steps = 3 if quick else 20
    generator = torch.Generator().manual_seed(0)
    batches = [
        transformer.sequences(
            facts,
            torch.randint(cfg.n_individuals, (cfg.batch_size,), generator=generator),
            torch.randint(cfg.n_relations, (cfg.batch_size,), generator=generator),
        )
        for _ in range(n_steps)
    ]

    def steps(setup: str, precision: str = "float32"):
        torch.manual_seed(0)
        model = transformer.FactsTransformer(cfg, facts.vocab_size)
        if setup == "sgd":
            optimizers = [torch.optim.SGD(model.parameters(), lr=0.1)]
        else:
            optimizers = transformer.make_optimizers(model, setup, _with_precision(cfg, precision))

        def work() -> None:
            for tokens, targets in batches:
                loss = torch.nn.functional.cross_entropy(model(tokens), targets)
                for optimizer in optimizers:
                    optimizer.zero_grad()
                loss.backward()
                for optimizer in optimizers:
                    optimizer.step()

        return work

    setups = [
        ("adam", "float32", "Adam"),
        ("muon", "float32", "Muon (float32 NS)"),
        ("muon", "bfloat16", "Muon (torch bfloat16 NS)"),
        ("muon_vo_ffn", "float32", "Muon on VO+FFN"),
    ]
    rows = []
    with single_thread():
        for setup, precision, label in setups[:2] if quick else setups:
            rows.append(
                comparison_row(
                    f"spectra transformer: {label} vs SGD ({n_steps} steps, batch 128)",
                    steps(setup, precision),
                    steps("sgd"),
                    1 if quick else 3,
                )
            )
    return rows


def _with_precision(cfg: transformer.TransformerConfig, precision: str) -> transformer.TransformerConfig:
    from dataclasses import replace

    return replace(cfg, muon_precision=precision)


def model_train_rows(model, model_label: str, quick: bool) -> list[dict]:
    if quick and model.cfg.d_model >= 512:
        return [
            {
                "name": f"spectra {model_label} train step: optimizers vs SGD",
                "skipped": "not with --quick on models with d_model >= 512 (Muon orthogonalises every hidden "
                "matrix: tens of seconds per step on 2 CPU cores)",
            }
        ]
    network = getattr(model, "original_model", None)
    if network is None:
        return [{"name": f"spectra {model_label} train step", "skipped": "the bridge exposes no original_model"}]
    device = next(network.parameters()).device
    batch, length = (2, 16) if quick else (4, 64)
    vocab = int(model.cfg.d_vocab)
    tokens = torch.randint(vocab, (batch, length), generator=torch.Generator().manual_seed(0)).to(device)
    initial = {name: p.detach().clone() for name, p in network.named_parameters()}

    def step(kind: str):
        def work() -> None:
            with torch.no_grad():  # every timed step starts from the same weights
                for name, p in network.named_parameters():
                    p.copy_(initial[name])
            optimizers = optimizers_for(network, kind)
            network.train()
            loss = network(input_ids=tokens, labels=tokens).loss
            loss.backward()
            for optimizer in optimizers:
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            network.eval()

        return work

    try:
        rows = [
            comparison_row(
                f"spectra {model_label} train step: {label} vs SGD (batch {batch}x{length})",
                step(kind),
                step("sgd"),
                1 if quick else 3,
            )
            for kind, label in [("adam", "Adam"), ("muon", "Muon (float32 NS) on hidden matrices")]
        ]
    finally:
        with torch.no_grad():
            for name, p in network.named_parameters():
                p.copy_(initial[name])
                p.grad = None
        network.eval()
    return rows


def optimizers_for(network: torch.nn.Module, kind: str) -> list[torch.optim.Optimizer]:
    params = list(network.named_parameters())
    if kind == "sgd":
        return [torch.optim.SGD([p for _, p in params], lr=1e-3)]
    if kind == "adam":
        return [torch.optim.Adam([p for _, p in params], lr=1e-3)]
    hidden = [p for name, p in params if p.ndim == 2 and not any(word in name for word in EMBEDDING_WORDS)]
    hidden_ids = {id(p) for p in hidden}
    unique_rest = {id(p): p for _, p in params if id(p) not in hidden_ids}  # tied weights appear once
    return [
        transformer.Float32Muon(hidden, lr=0.02, weight_decay=0.0),
        torch.optim.Adam(list(unique_rest.values()), lr=1e-3),
    ]


def weights_row(model, model_label: str, quick: bool) -> dict:
    n_layers = len(model.blocks)
    layers = tuple(range(min(n_layers, 2))) if quick and model.cfg.d_model >= 512 else ()
    cfg = weights.WeightsConfig(layers=layers)
    measured = layers or tuple(range(n_layers))

    def bare() -> None:
        for layer in measured:
            block = model.blocks[layer]
            w_v, w_o = block.attn.W_V, block.attn.W_O  # (heads, d_model, d_head), (heads, d_head, d_model)
            for weight in (torch.cat(list(w_v), dim=1), torch.cat(list(w_o), dim=0), block.mlp.W_in, block.mlp.W_out):
                torch.linalg.svdvals(weight.detach().float())

    suffix = f" (layers {list(layers)})" if layers else " (all layers)"
    return comparison_row(
        f"spectra {model_label} weight spectra vs bare SVDs{suffix}",
        lambda: weights.run(model, cfg),
        bare,
        1 if quick else 3,
    )
