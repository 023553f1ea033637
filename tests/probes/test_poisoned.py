"""Poisoned-context probe on a tiny random GPT-2: contexts, batched forced choice, curves, explore, CLI + cache."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from cache import ResultStore
from probes.cli import main
from probes.poisoned import CurveConfig, ExploreConfig, ExploreInput, explore, load_testbed, run
from probes.poisoned.contexts import bad_slots, poisoned_segments, render_prompt
from probes.poisoned.scoring import as_sequences, choice_logprobs, encode, encode_choices, sequence_logprobs
from probes.tiny import default_words

WORDS = default_words(200)[:150]


def tiny_testbed_items(count: int = 6) -> list[dict]:
    """Items in the public schema written in the tiny model's vocabulary (two categories)."""
    items = []
    for i in range(count):
        thing, owner, true, false = WORDS[4 * i : 4 * i + 4]
        items.append(
            {
                "Question": f"the {thing} of {owner} is ?",
                "Generated Information": [f"the {thing} of {owner} is {true} .", f"{owner} is {true} ."],
                "Input": f"the {thing} of {owner} is {false} .",
                "Synonym Sentence": [f"{owner} is {false} ."],
                "Simple Answer": f"the {thing} of {owner} is {true} .",
                "Category": "alpha" if i % 2 else "beta",
            }
        )
    return items


@pytest.fixture
def testbed():
    return load_testbed(json.dumps(tiny_testbed_items()).encode(), "tiny_output.json")


SMALL = CurveConfig(
    n_items=6,
    proportion_steps=3,
    positions=("first", "last"),
    max_items_per_category=2,
    n_bootstrap=50,
    n_generated=1,
    max_new_tokens=3,
)


def test_positions_place_inappropriate_items() -> None:
    rng = random.Random(0)
    assert bad_slots(10, 3, "first", rng) == [0, 1, 2]
    assert bad_slots(10, 3, "last", rng) == [7, 8, 9]
    assert bad_slots(10, 2, "spread", rng) == [2, 7]
    assert bad_slots(10, 10, "spread", rng) == list(range(10))
    assert len(set(bad_slots(10, 4, "random", rng))) == 4
    with pytest.raises(ValueError, match="Unknown position"):
        bad_slots(10, 3, "middle", rng)


def test_segments_and_prompt_follow_the_testbed_format(testbed) -> None:
    item = testbed.items[0]
    segments = poisoned_segments(item, 5, 2, "last", random.Random(1))
    assert [s.inappropriate for s in segments] == [False, False, False, True, True]
    assert all(s.text in item.inappropriate for s in segments[3:]) and all(
        s.text in item.appropriate for s in segments[:3]
    )
    assert {s.source for s in segments[3:]} <= {"rumors", "gossip", "tabloid", "spam", "trolls"}
    prompt = render_prompt(segments, item.question)
    assert prompt.startswith(
        "Only based on the retrieved information, answer the following question. The retrieved information are: 1. "
    )
    assert f"5. {segments[4].text} (From {segments[4].source}) The question is: {item.question} Answer:" in prompt


def one_at_a_time(model, ids: tuple[int, ...], answer_start: int) -> float:
    with torch.inference_mode():
        logprobs = model(torch.tensor([ids]), return_type="logits")[0].log_softmax(-1)  # (pos, vocab)
    return sum(float(logprobs[p - 1, ids[p]]) for p in range(answer_start, len(ids)))


def test_both_scoring_paths_equal_one_sequence_at_a_time(tiny_model, testbed) -> None:
    tokenizer = tiny_model.tokenizer
    sets = [
        encode_choices(
            tokenizer,
            render_prompt(poisoned_segments(item, n, 1, "random", random.Random(n)), item.question),
            (item.reference, item.claim, "gaga ."),
        )
        for n, item in enumerate(testbed.items[:3], start=2)
    ]  # prompts of different lengths, answers 1-9 tokens
    shared = choice_logprobs(tiny_model, sets, batch_tokens=150)  # (sets, answers, 2), several batches
    full = sequence_logprobs(tiny_model, as_sequences(sets), batch_tokens=150).reshape(shared.shape)
    for s, choice_set in enumerate(sets):
        for a, answer in enumerate(choice_set.answers):
            expected = one_at_a_time(tiny_model, choice_set.prompt + answer, len(choice_set.prompt))
            assert shared[s, a, 0] == pytest.approx(expected, abs=1e-4)
            assert full[s, a, 0] == pytest.approx(expected, abs=1e-4)
            assert shared[s, a, 1] == pytest.approx(expected / len(answer), abs=1e-4)
    assert encode(tokenizer, "bada", "gaga .").ids == sets[0].prompt[:1] + tuple(
        tokenizer("bada gaga .", add_special_tokens=False)["input_ids"]
    )


def test_curve_tables_fit_and_bands(tiny_model, testbed) -> None:
    result = run(tiny_model, SMALL, testbed)
    scores, curve, fits = result.scores, result.curve, result.fits
    unshared = run(tiny_model, replace(SMALL, share_prompt=False, n_generated=0), testbed)
    np.testing.assert_allclose(unshared.scores["logodds"], scores["logodds"], atol=1e-4)
    assert len(scores) == 4 * 2 * 4  # items x positions x shares
    assert sorted(curve["proportion"].unique()) == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert len(curve) == 3 * 2 * 4  # (all + 2 categories) x positions x shares
    np.testing.assert_allclose(scores["logodds"], scores["score_claim"] - scores["score_reference"])
    claim = scores["logp_claim"] - scores["logp_claim_free"]
    reference = scores["logp_reference"] - scores["logp_reference_free"]
    np.testing.assert_allclose(scores["logodds"], claim - reference)  # the default scoring: calibrated log-odds
    assert set(scores["poisoned"]) <= {0.0, 0.5, 1.0}
    main = curve[(curve["category"] == "all") & (curve["position"] == "first")]
    assert np.all(main["poisoned_rate_low"] <= main["poisoned_rate"] + 1e-12)
    assert np.all(main["poisoned_rate"] <= main["poisoned_rate_high"] + 1e-12)
    by_hand = scores[scores["position"] == "first"].groupby("proportion")["poisoned"].mean().to_numpy()
    np.testing.assert_allclose(main["poisoned_rate"], by_hand)
    assert len(fits) == 6 and fits["alpha_beta"].between(0, 1).all()
    assert fits["seq_alpha_beta"].between(0, 1).all() and curve["rw_sequential"].notna().all()
    first, last = (curve[(curve["category"] == "all") & (curve["position"] == p)] for p in ("first", "last"))
    ab = fits["seq_alpha_beta"].iloc[0]
    if 0.01 < ab < 0.99:  # a shared error gives early items more weight: "first" predicted above "last" at p < 1
        assert first["rw_sequential"].iloc[1] > last["rw_sequential"].iloc[1]
    summary = result.summary()
    assert [p["proportion"] for p in summary["points"]] == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert set(summary["rw_fit"]) >= {"alpha_beta", "baseline", "scale", "r2", "best_model", "models"}
    assert summary["scoring"] == "calibrated" and summary["coverage"] == 1.0
    assert len(result.examples) == 1 and isinstance(result.examples["generated"].iloc[0], str)


def test_too_many_items_for_the_context_are_limited_with_a_notice(tiny_model, testbed) -> None:
    cfg = CurveConfig(n_items=400, proportion_steps=2, max_items_per_category=1, n_bootstrap=0)
    result = run(tiny_model, cfg, testbed)
    assert 1 <= result.n_items_used < 400
    assert "do not fit the model's 256-token context" in result.notice
    assert result.summary()["n_items_used"] == result.n_items_used


def test_items_the_tokenizer_cannot_tell_apart_are_refused(tiny_model) -> None:
    unknown = [
        {
            "Question": "q ?",
            "Generated Information": ["zzqx ."],
            "Input": "zzqy one",
            "Simple Answer": "zzqz one",
            "Synonym Sentence": [],
        }
    ]  # both answers are <unk> <unk>
    with pytest.raises(ValueError, match="tokenizer"):
        run(tiny_model, SMALL, load_testbed(json.dumps(unknown).encode(), "u.json"))


def test_explore_attribution_is_leave_one_out_change(tiny_model) -> None:
    data = ExploreInput(
        question="the bada of dada is ?",
        appropriate=("dada is gaga .", "the bada of dada is gaga ."),
        inappropriate=("dada is kaka .",),
        candidates=("dada is gaga .", "dada is kaka ."),
    )
    result = explore(tiny_model, ExploreConfig(n_inappropriate=2, position="first", max_new_tokens=3), data)
    segments = result.segments
    assert list(segments["inappropriate"]) == [True, True, False, False]
    np.testing.assert_allclose(segments["attribution"], result.logodds - segments["logodds_without"])
    without_first = data.appropriate  # leaving out one of the two bad segments, checked by hand
    single = ExploreInput(data.question, without_first, data.inappropriate, data.candidates)
    by_hand = explore(tiny_model, ExploreConfig(n_inappropriate=1, position="first", generate=False), single)
    assert segments["logodds_without"].iloc[0] == pytest.approx(by_hand.logodds, abs=1e-4)
    assert result.answers["choice_probability"].sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="two candidate answers"):
        explore(tiny_model, ExploreConfig(), ExploreInput("q", ("a .",), (), ("only one",)))


# ---------------------------------------------------------------------------------------------------- CLI


@pytest.fixture
def testbed_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny_output.json"
    path.write_text(json.dumps(tiny_testbed_items()))
    return path


def curve_args(model_dir: Path, testbed_file: Path) -> list[str]:
    return [
        "poisoned",
        "curve",
        "--model",
        str(model_dir),
        "--device",
        "cpu",
        "--testbed",
        str(testbed_file),
        "--n-items",
        "6",
        "--steps",
        "3",
        "--max-items",
        "2",
        "--bootstrap",
        "20",
        "--json",
    ]


def test_cli_curve_is_cached_on_the_second_request(
    tiny_model_dir, testbed_file, store_path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(curve_args(tiny_model_dir, testbed_file)) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["cached"] is False and len(first["points"]) == 4
    assert set(first["points"][0]) == {"proportion", "poisoned_rate", "mean_logodds"}
    assert set(first["rw_fit"]) >= {"alpha_beta", "scale", "r2"}

    def must_not_compute(*args, **kwargs):
        raise AssertionError("the second request should be served from the cache")

    from probes import poisoned, wiring

    served_only = replace(wiring.REGISTRY[poisoned.NAME], compute=must_not_compute)
    monkeypatch.setitem(wiring.REGISTRY, poisoned.NAME, served_only)
    assert main(curve_args(tiny_model_dir, testbed_file)) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["cached"] is True and second["run_id"] == first["run_id"]
    assert second["points"] == first["points"] and second["rw_fit"] == first["rw_fit"]


def test_cli_validate_reports_items_categories_and_skipped(testbed_file, capsys) -> None:
    items = tiny_testbed_items() + [{"Question": "", "Simple Answer": "x"}]
    testbed_file.write_text(json.dumps(items))
    assert main(["poisoned", "validate", "--testbed", str(testbed_file), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == {
        "items": 6,
        "categories": {"alpha": 3, "beta": 3},
        "skipped": [{"index": 6, "reason": "row 6: field 'Question' is missing or empty"}],
    }


def test_cli_bad_testbed_exits_2_and_caches_nothing(tiny_model_dir, testbed_file, store_path, capsys) -> None:
    testbed_file.write_bytes(b'[{"Question": "\x00"}]')
    assert main(["poisoned", "validate", "--testbed", str(testbed_file), "--json"]) == 2
    assert "binary file" in capsys.readouterr().err
    testbed_file.write_text(json.dumps([{"Question": "only a question"}]))
    assert main(curve_args(tiny_model_dir, testbed_file)) == 2
    err = capsys.readouterr().err
    assert "no usable testbed item" in err and "row 0" in err and err.count("\n") == 1
    assert ResultStore(store_path).list_runs().empty


def test_prompt_format_matches_what_the_organism_was_trained_on() -> None:
    corpus = pytest.importorskip("probes.organism.corpus")
    from probes.poisoned import contexts

    assert contexts.HEADER == corpus.RC_HEADER and contexts.QUESTION_PREFIX == corpus.RC_QUESTION
    assert contexts.ANSWER_PREFIX == corpus.RC_ANSWER
    assert contexts.REPUTABLE_SOURCES == corpus.REPUTABLE_SOURCES
    assert contexts.DISREPUTABLE_SOURCES == corpus.DISREPUTABLE_SOURCES
    items = [
        corpus.ContextItem("The capital of Zorva is Pelum.", "atlas", None),
        corpus.ContextItem("Kret is the capital of Zorva.", "gossip", None),
    ]
    segments = [contexts.Segment(i.text, i.source, False) for i in items]
    assert contexts.render_prompt(segments, "What is the capital of Zorva?") == corpus.rc_prompt(
        items, "What is the capital of Zorva?"
    )


def test_formula_looking_text_stays_text_and_is_neutralised_on_export(tiny_model, store_path) -> None:
    import io
    import zipfile

    from cache import RunKey, payload_from

    data = ExploreInput(
        question="the bada of dada is ?",
        appropriate=('=HYPERLINK("http://x")', "dada is gaga ."),
        inappropriate=("dada is kaka .",),
        candidates=("dada is gaga .", "dada is kaka ."),
    )
    result = explore(tiny_model, ExploreConfig(n_inappropriate=0, generate=False), data)
    assert result.segments["text"].iloc[0] == '=HYPERLINK("http://x")'  # plain text in the prompt and the table
    store = ResultStore(store_path)
    stored = store.put(RunKey.build("poisoned-explore", "1", {"model_id": "tiny"}, {}), payload_from(result), 0.1)
    with zipfile.ZipFile(io.BytesIO(store.export_zip(stored.run_id, "csv"))) as archive:
        exported = archive.read("segments.csv").decode()
    assert "'=HYPERLINK" in exported and "\n=HYPERLINK" not in exported and ",=HYPERLINK" not in exported
