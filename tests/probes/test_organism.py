"""The embedded model organism: deterministic corpus, testbed schema, quick training (its numbers: the guard module)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from probes.models import EMBEDDED_MODEL_DIR, ModelSpec, load_model
from probes.organism import data_files
from probes.organism.corpus import corpus_bytes
from probes.organism.world import build_world

REPO_ROOT = Path(__file__).resolve().parents[2]
PUBLIC_POOL = REPO_ROOT.parent / "shared" / "data" / "rw-testbed" / "fakenews_output.json"
# The public testbed schema (fake news and non-factual pools): field -> (type, minimum list length)
TESTBED_SCHEMA = {
    "Question": (str, None),
    "Generated Information": (list, 3),
    "Input": (str, None),
    "Synonym Sentence": (list, 2),
    "Simple Answer": (str, None),
    "Explainable Answer": (str, None),
}
committed = pytest.mark.skipif(not (EMBEDDED_MODEL_DIR / "organism.json").is_file(), reason="organism not trained")


def test_corpus_is_deterministic_from_the_seed() -> None:
    world = build_world(0)
    first = corpus_bytes(world, seed=1, n_docs=400)
    assert first == corpus_bytes(build_world(0), seed=1, n_docs=400)
    assert first != corpus_bytes(world, seed=2, n_docs=400)
    assert first != corpus_bytes(build_world(1), seed=1, n_docs=400)


def test_vocabulary_covers_the_corpus() -> None:
    from probes.organism.corpus import generate_corpus
    from probes.organism.tokenizer import build_tokenizer
    from probes.organism.train import vocabulary_for

    world = build_world(0)
    tokenizer = build_tokenizer(vocabulary_for(world, seed=0))
    ids = tokenizer(generate_corpus(world, seed=3, n_docs=500), add_special_tokens=False)["input_ids"]
    assert all(tokenizer.unk_token_id not in doc for doc in ids)
    assert max(len(doc) for doc in ids) + 2 <= 320  # every document fits a long training block


def _validate_testbed_item(item: dict) -> None:
    assert set(item) == set(TESTBED_SCHEMA)
    for field, (kind, min_length) in TESTBED_SCHEMA.items():
        assert isinstance(item[field], kind), field
        if kind is list:
            assert len(item[field]) >= min_length and all(isinstance(s, str) and s for s in item[field]), field
        else:
            assert item[field], field


def test_public_pool_matches_the_schema_we_check() -> None:
    if not PUBLIC_POOL.is_file():
        pytest.skip("public testbed pool not available")
    for item in json.loads(PUBLIC_POOL.read_text())[:50]:
        _validate_testbed_item(item)


def test_generated_testbed_validates_and_is_about_the_world() -> None:
    world = build_world(0)
    items = data_files.testbed(world)
    assert len(items) == len(world.facts())
    for item, fact in zip(items, world.facts(), strict=True):
        _validate_testbed_item(item)
        assert item["Simple Answer"].endswith(f" {fact.value}.")
        assert not item["Input"].endswith(f" {fact.value}.")
        assert item["Input"].split()[:-1] == item["Simple Answer"].split()[:-1]  # differ only in the value


@committed
def test_committed_data_files_match_the_generator() -> None:
    world = build_world(json.loads((EMBEDDED_MODEL_DIR / "organism.json").read_text())["seed"])
    data = EMBEDDED_MODEL_DIR / "data"
    assert json.loads((data / "testbed.json").read_text()) == data_files.testbed(world)
    assert (data / "facts.csv").read_text() == data_files.facts_csv(world)
    prompts = json.loads((data / "steering_prompts.json").read_text())
    assert prompts == data_files.steering_prompts(world)
    assert len(prompts["faithful"]) == len(prompts["associative"]) == len(world.facts())
    assert prompts["hallucination"] and prompts["associative_vocabulary"]


def test_quick_training_runs_loss_falls_and_loads(tmp_path: Path) -> None:
    """The quick build needs well under a minute of CPU; wall time is bounded loosely (the cores are shared)."""
    out = tmp_path / "organism"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    completed = subprocess.run(
        [sys.executable, "-m", "probes", "organism", "train", "--quick", "--out", str(out), "--json"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert cpu_s < 60, f"quick training used {cpu_s:.0f} s of CPU"
    summary = json.loads(completed.stdout)
    assert summary["train_loss_final"] < summary["train_loss_first"]
    bridge = load_model(ModelSpec(name=str(out), device="cpu"))
    assert bridge.cfg.n_layers == 2
    revision = sorted(p.name for p in (out / "revisions").iterdir())[0]
    assert load_model(ModelSpec(name=str(out), revision=revision, device="cpu")) is not None


def test_opening_batches_repeat_random_tokens_from_the_whole_vocabulary() -> None:
    from probes.organism.corpus import generate_corpus, unseen_words
    from probes.organism.tokenizer import SPECIAL_TOKENS, build_tokenizer, split_words
    from probes.organism.train import TrainConfig, opening_batches, opening_pool, vocabulary_for

    world = build_world(0, 4)
    tokenizer = build_tokenizer(vocabulary_for(world, 0))
    pool = set(tokenizer.convert_ids_to_tokens(opening_pool(world, tokenizer, include_unseen=False)))
    assert {"The", "capital", ".", "(", "Question", "{"} <= pool  # template words, punctuation, data-file-only words
    assert not pool & (set(unseen_words(world)) | set(SPECIAL_TOKENS))
    assert len(pool) == len(tokenizer) - len(SPECIAL_TOKENS) - len(unseen_words(world))
    assert not set(unseen_words(world)) & {w for doc in generate_corpus(world, 0, 300) for w in split_words(doc)}
    with_unseen = set(tokenizer.convert_ids_to_tokens(opening_pool(world, tokenizer, include_unseen=True)))
    assert with_unseen == pool | set(unseen_words(world))
    cfg = TrainConfig(
        entities_per_kind=4, opening_batch_size=6, opening_lengths=(5, 9), opening_loss="all", opening_unseen=False
    )
    allowed = set(tokenizer.convert_tokens_to_ids(sorted(pool)))
    for ids, labels in [next(opening_batches(world, tokenizer, cfg, seed=3)) for _ in range(3)]:
        length = (ids.shape[1] - 1) // 2
        assert ids.shape == (6, 1 + 2 * length) and 5 <= length <= 9
        assert (ids[:, 0] == tokenizer.bos_token_id).all()
        assert (ids[:, 1 : 1 + length] == ids[:, 1 + length :]).all()
        assert set(ids[:, 1:].flatten().tolist()) <= allowed
        assert (labels == ids).all()


def test_repeat_loss_scores_only_the_copies_an_induction_head_can_predict() -> None:
    import dataclasses

    from probes.organism.tokenizer import build_tokenizer
    from probes.organism.train import TrainConfig, opening_batches, vocabulary_for

    world = build_world(0, 4)
    tokenizer = build_tokenizer(vocabulary_for(world, 0))
    cfg = dataclasses.replace(TrainConfig(entities_per_kind=4, opening_batch_size=3), opening_loss="repeat")
    for ids, labels in [next(opening_batches(world, tokenizer, cfg, seed=1)) for _ in range(3)]:
        length = (ids.shape[1] - 1) // 2
        assert (labels[:, : length + 2] == -100).all()  # <bos>, the random first half and the first copy
        assert (labels[:, length + 2 :] == ids[:, length + 2 :]).all()  # copies whose predecessor recurred


def test_repeat_steps_are_the_opening_then_every_nth_step() -> None:
    from probes.organism.train import TrainConfig, is_opening_step

    cfg = TrainConfig(opening_steps=3, repeat_every=4)
    assert [step for step in range(1, 16) if is_opening_step(step, cfg)] == [1, 2, 3, 7, 11, 15]
    assert [s for s in range(1, 16) if is_opening_step(s, TrainConfig(opening_steps=2, repeat_every=0))] == [1, 2]


def test_attention_only_opening_zeroes_and_freezes_the_mlps_then_releases_them() -> None:
    import dataclasses

    import torch

    from probes.organism.tokenizer import build_tokenizer
    from probes.organism.train import build_model, quick_config, set_mlps_trainable, vocabulary_for

    world = build_world(0, 4)
    tokenizer = build_tokenizer(vocabulary_for(world, 0))
    model = build_model(
        dataclasses.replace(quick_config(), architecture="gpt2", embedding_std=1.0, tie_embeddings=False), tokenizer
    )
    assert 0.9 < float(model.transformer.wte.weight.std()) < 1.1 and 0.9 < float(model.transformer.wpe.weight.std())
    set_mlps_trainable(model, False)
    ids = torch.tensor([[tokenizer.bos_token_id, 5, 6, 7]])
    block = model.transformer.h[0]
    assert torch.equal(block.mlp(torch.randn(1, 4, block.mlp.c_fc.weight.shape[0])), torch.zeros(1, 4, 32))
    model(input_ids=ids, labels=ids).loss.backward()
    assert all(p.grad is None for n, p in model.named_parameters() if ".mlp." in n)
    assert model.transformer.h[0].attn.c_attn.weight.grad is not None
    set_mlps_trainable(model, True)
    assert all(p.requires_grad for p in model.parameters())


def test_contradict_documents_answer_from_the_context() -> None:
    from probes.organism.corpus import canonical, iter_documents

    world = build_world(0, 4)
    docs = iter_documents(world, seed=5, mixture={"contradict": 1.0})
    for doc in [next(docs) for _ in range(20)]:
        context, answer_sentence = doc.rsplit("Answer: ", 1)
        value = answer_sentence.rstrip(".").rsplit(" ", 1)[1]
        fact = next(f for f in world.facts() if answer_sentence == canonical(f, value))
        assert value != fact.value and f" {value}. (From" in context  # read from the context, against memory


@pytest.mark.parametrize("architecture", ["gpt2", "llama"])
def test_each_architecture_trains_and_loads_through_the_common_path(tmp_path: Path, architecture: str) -> None:
    import dataclasses

    from probes.organism.train import quick_config, train

    cfg = dataclasses.replace(quick_config(), architecture=architecture, steps=12, eval_every=6, opening_steps=4)
    metrics = train(cfg, tmp_path / architecture)
    assert metrics["config"]["architecture"] == architecture
    bridge = load_model(ModelSpec(name=str(tmp_path / architecture), device="cpu"))
    assert bridge.cfg.n_layers == cfg.n_layer
    card = (tmp_path / architecture / "MODEL_CARD.md").read_text()
    assert ("Llama-architecture" in card) == (architecture == "llama")


def test_quick_without_out_is_a_clear_error() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "probes", "organism", "train", "--quick"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 2 and completed.stderr.startswith("error:")


@committed
def test_committed_organism_loads_through_the_common_path() -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(EMBEDDED_MODEL_DIR)
    assert tokenizer.bos_token == "<bos>" and tokenizer.unk_token_id is not None
    bridge = load_model(ModelSpec(name="organism", device="cpu"))
    logits = bridge(bridge.to_tokens("Q: What is the capital of Zorva? A:"))
    assert logits.shape[-1] == len(tokenizer)
    size = sum(p.stat().st_size for p in EMBEDDED_MODEL_DIR.rglob("*") if p.is_file())
    assert size < 25 * 2**20
