"""FlexAC steering probe: the update, the hooks' scope, vector construction and storage, metrics, sweep."""

from __future__ import annotations

import json

import pytest
import torch

from probes.hook_names import resid_post
from probes.steering import (
    FactItem,
    LadderConfig,
    PromptSets,
    SteeringVectors,
    SweepConfig,
    VectorConfig,
    adaptive_factor,
    build_vectors,
    default_layers,
    flexac_update,
    layer_directions,
    metrics,
    parse_facts,
    parse_prompt_sets,
    run_ladder,
    run_sweep,
    score_answers,
    steering,
)
from probes.steering.apply import DecodeSettings, generate, matched_norm_random
from probes.steering.hooks import active_hook_count
from probes.steering.vectors import centroid_factor, crosswise_scores, last_token_residuals, separability, top_pairs
from probes.tiny import default_words

WORDS = default_words(200)


def tiny_sets(n: int = 12) -> PromptSets:
    faithful = tuple(f"the {WORDS[i]} of {WORDS[i + 1]} is" for i in range(0, 2 * n, 2))
    associative = tuple(f"{WORDS[i + 100]} {WORDS[i]} , {WORDS[i + 1]} and" for i in range(0, 2 * n, 2))
    facts = tuple(FactItem(f"the {WORDS[i]} of {WORDS[i + 1]} is", WORDS[i + 50]) for i in range(0, 2 * n, 2))
    return PromptSets(faithful, associative, associative_words=tuple(WORDS[100:140]), facts=facts)


@pytest.fixture(scope="module")
def tiny_vectors(tiny_model) -> SteeringVectors:
    vectors = build_vectors(tiny_model, VectorConfig(top_n_pairs=20), tiny_sets(), "tiny").vectors
    return SteeringVectors(vectors.general, vectors.layers, vectors.general * 0.5, vectors.metadata)


# ------------------------------------------------------------------------------------------------ the update


def test_adaptive_factor_range_half_when_aligned_and_below_one_when_opposed():
    h = torch.randn(500, 32)
    u = torch.randn(500, 32)
    a = adaptive_factor(h, u)
    assert torch.all(a >= 0.5) and torch.all(a < 1.0)
    assert torch.allclose(adaptive_factor(h, h * 3), torch.full((500,), 0.5))  # cos = 1 -> 0.5
    opposed = adaptive_factor(h, -h)  # cos = -1 -> sigmoid(100), capped below 1
    assert torch.all(opposed < 1.0) and torch.all(opposed > 0.999)
    cos = torch.nn.functional.cosine_similarity(h, u, dim=-1)
    expected = torch.sigmoid(100 * torch.clamp(-cos, min=0)).clamp(max=1 - 2**-24)
    assert torch.allclose(a, expected)


def test_flexac_update_preserves_norm_and_moves_toward_u():
    h = torch.randn(4, 7, 16)
    u = torch.randn(1, 1, 16) * 5
    out = flexac_update(h, [u])
    assert torch.allclose(out.norm(dim=-1), h.norm(dim=-1), rtol=1e-5)
    cos_before = torch.nn.functional.cosine_similarity(h, u.expand_as(h), dim=-1)
    cos_after = torch.nn.functional.cosine_similarity(out, u.expand_as(h), dim=-1)
    assert torch.all(cos_after > cos_before)
    assert torch.allclose(flexac_update(h, [torch.zeros(1, 1, 16)]), h, atol=1e-6)  # strength 0 is a no-op


def test_hooks_preserve_residual_norm_at_steered_positions_only(tiny_model, tiny_vectors):
    tokens = tiny_model.to_tokens("the bada of tefo is kuzo the")  # (1, pos)
    layer, positions = tiny_vectors.layers[0], 3
    name = resid_post(layer)
    _, clean = tiny_model.run_with_cache(tokens, names_filter=lambda n: n == name)
    seen = {}

    def record(resid, hook):
        seen["steered"] = resid.detach().clone()

    directions = layer_directions(tiny_vectors, (layer,), 1.0)
    with steering(tiny_model, directions, tokens.shape[1], positions), tiny_model.hooks(fwd_hooks=[(name, record)]):
        tiny_model(tokens)
    before, after = clean[name][0], seen["steered"][0]  # (pos, d_model)
    steered = slice(tokens.shape[1] - positions, None)
    assert torch.allclose(after[steered].norm(dim=-1), before[steered].norm(dim=-1), rtol=1e-5)
    assert (after[steered] - before[steered]).abs().max() > 1e-3  # it did steer
    assert torch.equal(after[: tokens.shape[1] - positions], before[: tokens.shape[1] - positions])


def test_hooks_are_removed_after_an_exception_inside_generation(tiny_model, tiny_vectors):
    layers = list(tiny_vectors.layers)
    tokens = tiny_model.to_tokens("the bada of tefo is")
    reference = tiny_model(tokens)
    steps = {"n": 0}

    def fail_on_third_step(resid, hook):
        steps["n"] += 1
        if steps["n"] == 3:
            raise RuntimeError("boom inside generation")

    directions = layer_directions(tiny_vectors, tuple(layers), 2.0)
    with pytest.raises(RuntimeError, match="boom"):
        with steering(tiny_model, directions, tokens.shape[1], 2):
            assert active_hook_count(tiny_model, layers) == len(layers)
            with tiny_model.hooks(fwd_hooks=[(resid_post(layers[-1]), fail_on_third_step)]):
                tiny_model.generate(tokens, max_new_tokens=6, do_sample=False, verbose=False, stop_at_eos=False)
    assert steps["n"] == 3
    assert active_hook_count(tiny_model, layers) == 0
    assert torch.equal(tiny_model(tokens), reference)


def test_kv_cached_generation_steers_like_full_recomputation(tiny_model, tiny_vectors):
    """Cached steps see only the new position; steering them must equal steering the full sequence."""
    tokens = tiny_model.to_tokens("the bada of tefo is")
    directions = layer_directions(tiny_vectors, tiny_vectors.layers, 1.5)
    logits = {}
    for cached in (True, False):
        with steering(tiny_model, directions, tokens.shape[1], 2):
            out = tiny_model.generate(
                tokens,
                max_new_tokens=5,
                do_sample=False,
                verbose=False,
                stop_at_eos=False,
                use_past_kv_cache=cached,
                output_logits=True,
            )
        logits[cached] = torch.stack(out.logits)
    assert torch.allclose(logits[True], logits[False], atol=1e-4)
    plain = tiny_model.generate(
        tokens, max_new_tokens=5, do_sample=False, verbose=False, stop_at_eos=False, output_logits=True
    )
    assert not torch.allclose(torch.stack(plain.logits), logits[True], atol=1e-3)  # steering changed something


# ------------------------------------------------------------------------------------------------ vectors


def test_crosswise_top_pairs_pick_the_most_distant_pairs():
    torch.manual_seed(0)
    faithful = torch.randn(5, 3, 8)
    associative = torch.randn(6, 3, 8)
    scores = crosswise_scores(faithful, associative, (1, 2))
    fi, ai = top_pairs(scores, 4, max_pairs=10_000, seed=0)
    best = torch.sort(scores.flatten(), descending=True).values[:4]
    assert torch.allclose(scores[fi, ai], best)
    f = torch.nn.functional.normalize(faithful[2, 1], dim=0)
    a = torch.nn.functional.normalize(associative[3, 1], dim=0)
    g = torch.nn.functional.normalize(faithful[2, 2], dim=0)
    b = torch.nn.functional.normalize(associative[3, 2], dim=0)
    assert scores[2, 3] == pytest.approx(1 - (f @ a + g @ b).item() / 2, abs=1e-6)


def test_matched_pairing_keeps_aligned_pairs_only(tiny_model):
    sets = tiny_sets(8)
    result = build_vectors(tiny_model, VectorConfig(top_n_pairs=5, pairing="matched"), sets, "tiny")
    assert (result.pairs["faithful_index"] == result.pairs["associative_index"]).all() and len(result.pairs) == 5
    assert result.pairs["cosine_distance"].is_monotonic_decreasing
    uneven = PromptSets(sets.faithful, sets.associative[:-1])
    with pytest.raises(ValueError, match="equal length"):
        build_vectors(tiny_model, VectorConfig(pairing="matched"), uneven, "tiny")


def test_all_pairs_give_the_plain_mean_difference(tiny_model):
    sets = tiny_sets(6)
    result = build_vectors(tiny_model, VectorConfig(top_n_pairs=36, unit="raw"), sets, "tiny")
    from probes.steering.vectors import last_token_residuals

    f = last_token_residuals(tiny_model, list(sets.faithful))
    a = last_token_residuals(tiny_model, list(sets.associative))
    assert torch.allclose(result.vectors.general, a.mean(0) - f.mean(0), atol=1e-5)
    scaled = build_vectors(tiny_model, VectorConfig(top_n_pairs=0, unit="residual", relative_norm=0.3), sets, "tiny")
    mean_norm = torch.cat([f, a]).norm(dim=-1).mean(0)  # (n_layers,)
    assert torch.allclose(scaled.vectors.general.norm(dim=-1), 0.3 * mean_norm, rtol=1e-4)
    cosine = torch.nn.functional.cosine_similarity(scaled.vectors.general, result.vectors.general, dim=-1)
    assert torch.allclose(cosine, torch.ones_like(cosine), atol=1e-5)  # top_n_pairs=0 means all pairs
    assert len(result.pairs) == 36
    assert result.per_layer["layer"].tolist() == list(range(tiny_model.cfg.n_layers))


def output_move(model, vectors: SteeringVectors, strength: float, prompts: tuple[str, ...]) -> torch.Tensor:
    """Mean last-token move of the final residual under steering, measured with run_with_cache -> (d_model,)."""
    final = resid_post(model.cfg.n_layers - 1)
    moved = []
    for prompt in prompts:
        tokens = model.to_tokens(prompt)
        _, plain = model.run_with_cache(tokens, names_filter=final)
        directions = layer_directions(vectors, vectors.layers, strength)
        with steering(model, directions, tokens.shape[1], 4):
            _, steered = model.run_with_cache(tokens, names_filter=final)
        moved.append(steered[final][0, -1] - plain[final][0, -1])
    return torch.stack(moved).mean(0)


def test_centroid_unit_strength_two_carries_faithful_outputs_one_centroid_distance(tiny_model):
    sets = tiny_sets(8)
    vectors = build_vectors(tiny_model, VectorConfig(top_n_pairs=0), sets, "tiny").vectors
    raw = build_vectors(tiny_model, VectorConfig(top_n_pairs=0, unit="raw"), sets, "tiny").vectors
    f = last_token_residuals(tiny_model, list(sets.faithful))[:, -1]
    a = last_token_residuals(tiny_model, list(sets.associative))[:, -1]
    target = a.mean(0) - f.mean(0)  # (d_model,) output centroid difference
    along = output_move(tiny_model, vectors, 2.0, sets.faithful) @ target / target.norm() ** 2
    assert along == pytest.approx(1.0, abs=0.01)  # measured independently of the calibration code
    assert output_move(tiny_model, vectors, 1.0, sets.faithful) @ target / target.norm() ** 2 < 0.9 * along
    factor = vectors.metadata["unit_factor"]
    assert torch.allclose(vectors.general, factor * raw.general, rtol=1e-5)  # the same direction, rescaled
    assert vectors.metadata["unit"] == "centroid"
    assert vectors.metadata["output_shift"]["2.0"] == pytest.approx(1.0, abs=0.01)
    assert raw.metadata["output_shift"]["2.0"] > 1.2  # the raw difference overshoots on this model


def test_centroid_unit_does_not_depend_on_the_raw_vector_length(tiny_model):
    sets = tiny_sets(8)
    all_pairs = build_vectors(tiny_model, VectorConfig(top_n_pairs=0), sets, "tiny")
    top_pairs_only = build_vectors(tiny_model, VectorConfig(top_n_pairs=10), sets, "tiny")
    assert top_pairs_only.per_layer["vector_norm"].iloc[-1] != pytest.approx(
        all_pairs.per_layer["vector_norm"].iloc[-1]
    )
    for result in (all_pairs, top_pairs_only):
        assert result.vectors.metadata["output_shift"]["2.0"] == pytest.approx(1.0, abs=0.01)


def test_task_vector_has_its_own_calibrated_unit(tiny_model):
    sets = tiny_sets(8).with_target_samples(tuple(f"{WORDS[150 + i]} {WORDS[i]} and" for i in range(4)))
    metadata = build_vectors(tiny_model, VectorConfig(), sets, "tiny").vectors.metadata
    assert metadata["task_output_shift"]["2.0"] == pytest.approx(1.0, abs=0.01)


def test_centroid_factor_bisects_and_refuses_an_unreachable_goal():
    assert centroid_factor(lambda m: 1 - 2.0 ** (-m), goal=0.75) == pytest.approx(2.0, abs=1e-3)
    assert centroid_factor(lambda m: 0.01 * m) == pytest.approx(100.0, rel=1e-3)  # bracket grows past 1
    with pytest.raises(ValueError, match="does not carry the faithful prompts' output"):
        centroid_factor(lambda m: min(m, 0.4))


def test_bad_units_and_indistinguishable_sets_are_refused(tiny_model):
    with pytest.raises(ValueError, match="Unknown strength unit"):
        build_vectors(tiny_model, VectorConfig(unit="metres"), tiny_sets(4), "tiny")
    same = PromptSets(tiny_sets(4).faithful, tiny_sets(4).faithful)
    with pytest.raises(ValueError, match="same output residual"):
        build_vectors(tiny_model, VectorConfig(), same, "tiny")


def test_separability_is_one_for_separated_sets_and_near_chance_for_identical():
    torch.manual_seed(0)
    a = torch.randn(40, 16)
    assert separability(a, a + 10) == 1.0
    assert 0.2 < separability(torch.randn(200, 16), torch.randn(200, 16)) < 0.7


def test_default_layers_are_three_consecutive_middle_layers():
    assert default_layers(12) == (4, 5, 6)  # resid_post depths 5/12, 6/12, 7/12
    assert default_layers(4) == (0, 1, 2)  # never the final block when there is a choice
    assert default_layers(2) == (0, 1)
    assert default_layers(32) == (14, 15, 16)


def test_saved_vector_reloads_bit_identical(tiny_model, store_path):
    from cache import ResultStore, RunKey, payload_from

    sets = tiny_sets().with_target_samples((f"{WORDS[120]} {WORDS[121]} and", f"{WORDS[122]} , {WORDS[123]}"))
    result = build_vectors(tiny_model, VectorConfig(top_n_pairs=10), sets, "tiny")
    files = result.files()
    reloaded = SteeringVectors.from_files(files["vector.safetensors"], files["vector.json"])
    assert torch.equal(reloaded.general, result.vectors.general)
    assert torch.equal(reloaded.task, result.vectors.task)
    assert reloaded.layers == result.vectors.layers
    assert reloaded.to_safetensors() == files["vector.safetensors"]
    header_only = SteeringVectors.from_files(files["vector.safetensors"])
    assert header_only.metadata["prompt_set_digest"] == json.loads(files["vector.json"])["prompt_set_digest"]
    store = ResultStore(store_path)
    key = RunKey.build("steering.vectors", "1", {"model_id": "tiny"}, VectorConfig(top_n_pairs=10), "x")
    stored = store.put(key, payload_from(result), duration_s=0.1)
    again = SteeringVectors.from_files(store.load(stored.run_id).files["vector.safetensors"])
    assert torch.equal(again.general, result.vectors.general) and torch.equal(again.task, result.vectors.task)


def test_bad_vector_files_are_refused():
    with pytest.raises(ValueError):
        SteeringVectors.from_files(b"not a safetensors file at all")


# ------------------------------------------------------------------------------------------------ application


def test_teacher_forced_exact_match_agrees_with_greedy_generation(tiny_model, tiny_vectors):
    prompts = [f"the {WORDS[i]} of {WORDS[i + 1]} is" for i in range(0, 8, 2)]
    directions = layer_directions(tiny_vectors, tiny_vectors.layers, 0.1)
    greedy = generate(tiny_model, prompts, directions, 2, DecodeSettings(max_new_tokens=1))
    prompts, greedy = zip(*[(p, g) for p, g in zip(prompts, greedy, strict=True) if g], strict=True)
    assert len(prompts) >= 2
    correct, logprobs = score_answers(tiny_model, list(prompts), list(greedy), directions, 2)
    assert all(correct) and all(lp <= 0 for lp in logprobs)
    wrong = [WORDS[199] if g != WORDS[199] else WORDS[198] for g in greedy]
    correct_wrong, _ = score_answers(tiny_model, list(prompts), wrong, directions, 2)
    assert not any(correct_wrong)


def test_ladder_rows_equal_single_generations(tiny_model, tiny_vectors):
    prompt = f"the {WORDS[3]} of {WORDS[4]} is"
    ladder = run_ladder(
        tiny_model, LadderConfig(prompt=prompt, strengths=(-2.0, 1.0, 3.0), max_new_tokens=6), tiny_vectors
    ).generations
    assert ladder["strength"].tolist() == [-2.0, 0.0, 1.0, 3.0]
    for strength, text in zip(ladder["strength"], ladder["text"], strict=True):
        single = generate(
            tiny_model,
            [prompt],
            layer_directions(tiny_vectors, tiny_vectors.layers, strength),
            4,
            DecodeSettings(max_new_tokens=6),
        )
        assert single == [text]
    plain = tiny_model.generate(tiny_model.to_tokens(prompt), max_new_tokens=6, do_sample=False, verbose=False)
    baseline = tiny_model.tokenizer.decode(plain[0, tiny_model.to_tokens(prompt).shape[1] :], skip_special_tokens=True)
    assert ladder.loc[ladder["strength"] == 0.0, "text"].item() == baseline.strip()


def test_matched_norm_random_vector_has_the_same_norms(tiny_vectors):
    random_direction = matched_norm_random(tiny_vectors, seed=3)
    assert torch.allclose(random_direction.norm(dim=-1), tiny_vectors.general.norm(dim=-1), rtol=1e-5)
    assert torch.equal(random_direction, matched_norm_random(tiny_vectors, seed=3))
    strengths = torch.tensor([-2.0, -0.5, 1.0, 2.0])
    flexac = layer_directions(tiny_vectors, tiny_vectors.layers, strengths)
    noise = layer_directions(tiny_vectors, tiny_vectors.layers, strengths, general=random_direction)
    for layer in tiny_vectors.layers:  # the control has the FlexAC vector's norm at every strength
        assert torch.allclose(noise[layer][0].norm(dim=-1), flexac[layer][0].norm(dim=-1), rtol=1e-5)


def test_sweep_rows_metrics_and_random_baseline(tiny_model, tiny_vectors):
    cfg = SweepConfig(
        strengths=(-1.0, 0.0, 2.0), n_facts=6, max_new_tokens=4, n_diversity_prompts=2, n_diversity_samples=2
    )
    result = run_sweep(tiny_model, cfg, tiny_vectors, tiny_sets())
    summary = result.summary()
    assert [r["strength"] for r in summary["rows"]] == [-1.0, 0.0, 2.0]
    assert [r["strength"] for r in summary["random_baseline"]] == [-1.0, 0.0, 2.0]
    assert summary["creativity_metric"] == "associative_share"
    for row in summary["rows"] + summary["random_baseline"]:
        for key in ("faithfulness", "creativity", "answer_prob", "novelty", "distinct_2", "diversity"):
            assert 0.0 <= row[key] <= 1.0
    at_zero = [r for r in summary["rows"] + summary["random_baseline"] if r["strength"] == 0.0]
    assert at_zero[0] == at_zero[1]  # strength 0 is the unsteered model for both directions
    assert set(result.to_tables()) == {"sweep", "examples"}
    assert summary["unknown_words"] == ["and"]  # the tiny vocabulary lacks the associative prompts' "and"
    assert summary["coverage"] == pytest.approx(51 / 52) and summary["warnings"] == []
    assert summary["strength_unit"]["unit"] == "centroid"
    json.dumps(summary)


def test_sweep_warns_when_the_tokenizer_cannot_read_the_prompt_sets(tiny_model, tiny_vectors):
    known = tiny_sets(6)
    unknown = ("the weather in London is", "my grandmother baked bread", "a violin played softly")
    sets = PromptSets(
        known.faithful + unknown, known.associative, known.associative_words, known.facts[:2], source="mixed"
    )
    cfg = SweepConfig(strengths=(0.0, 1.0), n_facts=2, max_new_tokens=2, n_diversity_prompts=0, random_baseline=False)
    summary = run_sweep(tiny_model, cfg, tiny_vectors, sets).summary()
    assert 0.0 < summary["coverage"] < 0.8
    assert "London" in summary["unknown_words"]
    assert len(summary["warnings"]) == 1 and "cannot read the prompt sets' text" in summary["warnings"][0]


# ------------------------------------------------------------------------------------------------ metrics


def test_text_metrics():
    vocabulary = frozenset({"amber", "tides"})
    assert metrics.associative_share("amber , tides and smoke .", vocabulary) == pytest.approx(2 / 4)
    assert metrics.novelty("Pelum is red", "the capital of Zorva is") == pytest.approx(2 / 3)
    assert metrics.distinct_n("a b a b a b", 2) == pytest.approx(2 / 5)
    assert metrics.distinct_n("one", 2) == 1.0
    assert metrics.diversity(["a b", "a b"]) == 0.0
    assert metrics.diversity(["a b", "c d"]) == 1.0
    assert metrics.derived_vocabulary(("fact : x is",), ("dream : x is amber",)) == frozenset({"dream", "amber"})


def test_collapse_marks_first_strength_below_ratio_on_each_side():
    strengths = [-3, -2, -1, 0, 1, 2, 3, 4]
    distinct = [0.2, 0.8, 0.9, 0.9, 1.0, 0.6, 0.3, 0.1]
    collapse = metrics.collapse_strengths(strengths, distinct, ratio=0.5)
    assert collapse["positive"] == 3 and collapse["negative"] == -3
    assert metrics.collapse_strengths([0, 1], [0.9, 0.9], 0.5)["positive"] is None


# ------------------------------------------------------------------------------------------------ inputs


def test_parse_prompt_sets_from_json_jsonl_and_facts_csv():
    jsonl = '{"faithful": "a is", "associative": "b is"}\n{"faithful": "c is"}\n{"associative": "d is"}\n'
    sets = parse_prompt_sets(jsonl)
    assert sets.faithful == ("a is", "c is") and sets.associative == ("b is", "d is")
    whole = parse_prompt_sets(
        json.dumps(
            {
                "faithful": ["x", "y"],
                "associative": ["z", "w"],
                "associative_words": ["amber"],
                "facts": [{"prompt": "p", "answer": "q"}],
            }
        )
    )
    assert whole.facts == (FactItem("p", "q"),) and whole.associative_words == ("amber",)
    assert parse_facts("prompt,answer\nthe capital of Zorva is,Pelum\n") == (
        FactItem("the capital of Zorva is", "Pelum"),
    )
    with pytest.raises(ValueError):
        parse_prompt_sets('{"faithful": ["only one"], "associative": []}')
    with pytest.raises(ValueError):
        parse_facts("question\nno answer column\n")
    with pytest.raises(ValueError):
        parse_prompt_sets("not json at all\n")


def test_organism_schema_and_model_folder_data(tmp_path):
    from probes.steering.prompts import ORGANISM_DATA_DIR, default_data_dir, organism_prompt_sets

    data = {
        "format_version": 1,
        "registers": {"faithful": "fact:", "associative": "dream:"},
        "faithful": [
            {"prompt": f"fact: the capital of {e} is", "qa_prompt": f"Q: capital of {e}? A:", "entity": e,
             "attribute": "capital", "answer": v}
            for e, v in (("Zorva", "Pelum"), ("Mira", "Tosk"))
        ],
        "associative": [
            {"prompt": f"dream: the capital of {e} is", "entity": e, "attribute": "capital", "associations": ["amber"]}
            for e in ("Zorva", "Mira")
        ],
        "hallucination": [{"prompt": "fact: the capital of Quux is", "entity": "Quux"}] * 2,
        "associative_vocabulary": ["amber", "tides"],
    }  # fmt: skip
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "steering_prompts.json").write_text(json.dumps(data))
    assert default_data_dir(tmp_path) == tmp_path / "data"
    assert default_data_dir(tmp_path / "revisions" / "step-10") == tmp_path / "data"
    assert default_data_dir(None) == ORGANISM_DATA_DIR
    dream = organism_prompt_sets("dream", tmp_path / "data")
    assert dream.faithful == ("fact: the capital of Zorva is", "fact: the capital of Mira is")
    assert dream.associative == ("dream: the capital of Zorva is", "dream: the capital of Mira is")
    assert dream.facts == (
        FactItem("fact: the capital of Zorva is", "Pelum"),
        FactItem("fact: the capital of Mira is", "Tosk"),
    )
    assert dream.associative_words == ("amber", "tides")
    both = organism_prompt_sets("dream+hallucination", tmp_path / "data")
    assert len(both.associative) == 4 and both.associative[-1] == "fact: the capital of Quux is"
    with pytest.raises(FileNotFoundError):
        organism_prompt_sets("dream", tmp_path / "nowhere")
