"""RW-Steering fine-tuning (probes/poisoned/mitigate.py): the split, the targets, judge-first curves, saving a
revision atomically, LoRA, the wiring's three stored runs, and the bad inputs of the issue."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from cache import ResultStore
from probes import wiring
from probes.models import EMBEDDED_MODEL_DIR, ModelSpec, load_model, local_folder, tuned_folder, tuned_revisions
from probes.poisoned import CurveConfig, load_testbed, load_testbed_file
from probes.poisoned import mitigate as rw
from probes.poisoned.contexts import DISREPUTABLE_SOURCES, Segment, judgement
from probes.poisoned.probe import Prompting
from probes.poisoned.testbed import EMBEDDED_TESTBED
from tests.probes.test_poisoned import tiny_testbed_items

QUICK = rw.MitigateConfig(n_items=6, stage1_steps=3, stage2_steps=2, batch_size=2)
QUICK_CURVE = CurveConfig(n_items=6, proportion_steps=2, n_bootstrap=0)


@pytest.fixture(autouse=True)
def tuned_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "tuned"
    monkeypatch.setenv("ASSOCLENS_TUNED_DIR", str(folder))
    return folder


@pytest.fixture(scope="module")
def organism_testbed():
    return load_testbed_file(EMBEDDED_TESTBED)


@pytest.fixture(scope="module")
def tiny_testbed():
    return load_testbed(json.dumps(tiny_testbed_items(24)).encode(), "tiny_output.json")


@pytest.fixture(scope="module")
def organism_tokenizer():
    from probes.models import load_tokenizer

    return load_tokenizer(ModelSpec(device="cpu"))


def test_split_is_by_question_seeded_and_disjoint(organism_testbed, organism_tokenizer) -> None:
    split = rw.split_items(organism_testbed, organism_tokenizer, rw.MitigateConfig())
    again = rw.split_items(organism_testbed, organism_tokenizer, rw.MitigateConfig())
    other = rw.split_items(organism_testbed, organism_tokenizer, rw.MitigateConfig(split_seed=1))
    train_questions = {item.question for item in split.train}
    held_questions = {item.question for item in split.held_out.items}
    assert not train_questions & held_questions
    assert len(split.train) + len(split.held_out.items) == len(organism_testbed.items)
    assert len(split.held_out.items) == round(0.3 * len(organism_testbed.items))
    assert again.held_out.digest == split.held_out.digest
    assert other.held_out.digest != split.held_out.digest


def test_a_testbed_too_small_to_split_is_refused(organism_testbed, organism_tokenizer) -> None:
    small = replace(organism_testbed, items=organism_testbed.items[:19])
    with pytest.raises(ValueError, match="19 usable items.*at least 20"):
        rw.split_items(small, organism_tokenizer, rw.MitigateConfig())


def test_judgement_names_the_reliable_items() -> None:
    segments = [Segment("a", "atlas", False), Segment("b", "spam", True), Segment("c", "archive", False)]
    assert judgement(segments) == "Reliable items: 1, 3."
    assert judgement([Segment("b", "spam", True)], "0") == "Reliable items: 0."


def test_training_targets_judge_then_answer_then_eos(organism_testbed, organism_tokenizer) -> None:
    cfg = rw.MitigateConfig(n_items=5)
    split = rw.split_items(organism_testbed, organism_tokenizer, cfg)
    prompting = Prompting(organism_tokenizer, False, True, judge_first=True)
    examples = rw.Examples(split.train, prompting, 5, cfg)
    item = split.train[0]
    example = examples.example(item, 2, "first")
    target = organism_tokenizer.decode(list(example.target))
    assert target.startswith("Reliable items : 3 , 4 , 5 .")  # the word-level tokenizer spaces punctuation
    assert organism_tokenizer.decode(list(example.target[-1:])) == "<eos>"
    reference = organism_tokenizer(" " + item.reference, add_special_tokens=False)["input_ids"]
    assert list(example.target[-1 - len(reference) : -1]) == reference
    assert examples.none_word == "0"  # the organism has no word "none"


def bad_count(tokenizer, example: rw.Example) -> int:
    text = tokenizer.decode(list(example.prompt))
    return sum(text.count(f"( From {source} )") for source in DISREPUTABLE_SOURCES)


def test_stage_two_adds_contexts_with_only_a_few_inappropriate_items(organism_testbed, organism_tokenizer) -> None:
    cfg = rw.MitigateConfig(n_items=10)
    split = rw.split_items(organism_testbed, organism_tokenizer, cfg)
    examples = rw.Examples(split.train, Prompting(organism_tokenizer, False, True, judge_first=True), 10, cfg)
    stage = {s: [bad_count(organism_tokenizer, examples.draw(s)) for _ in range(300)] for s in (1, 2)}
    few = {s: sum(1 <= n <= cfg.few_inappropriate for n in counts) / 300 for s, counts in stage.items()}
    assert few[1] < 0.45 < few[2]  # stage 1: 3 of 11 counts (0.27); stage 2: half few + half uniform (0.64)
    assert set(stage[1]) == set(range(11))  # every share from 0 to all items


def test_batch_labels_cover_only_the_target() -> None:
    batch = [rw.Example((1, 2, 3), (4, 5)), rw.Example((1, 2), (6,))]
    ids, mask, labels = rw.batch_tensors(batch, 0, "cpu")
    assert ids.tolist() == [[1, 2, 3, 4, 5], [1, 2, 6, 0, 0]]
    assert mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    assert labels.tolist() == [[-100, -100, -100, 4, 5], [-100, -100, 6, -100, -100]]


def test_judge_first_scores_the_answers_after_the_models_own_judgement() -> None:
    model = load_model(ModelSpec(device="cpu"))
    testbed = load_testbed_file(EMBEDDED_TESTBED)
    cfg = CurveConfig(n_items=4, proportion_steps=2, max_items_per_category=3, n_bootstrap=0)
    from probes.poisoned import run

    plain = run(model, cfg, testbed)
    judged = run(model, replace(cfg, judge_first=True), testbed)
    assert (plain.scores["judgement"] == "").all()
    assert (judged.scores["judgement"] != "").all()
    assert not (judged.scores["logodds"].to_numpy() == plain.scores["logodds"].to_numpy()).all()
    # the shown prompt is what the model read before its answer: the prompt and its own judgement
    assert judged.example_prompt.startswith(plain.example_prompt)
    assert len(judged.example_prompt) > len(plain.example_prompt)


def test_fine_tune_saves_a_loadable_revision_with_its_card(organism_testbed, tuned_dir) -> None:
    spec = ModelSpec(device="cpu")
    result = rw.fine_tune(spec, organism_testbed, QUICK, "rw-steering-test")
    folder = tuned_folder("organism", "rw-steering-test")
    assert folder is not None and folder.parent.parent == tuned_dir / "organism"
    assert {"model.safetensors", "config.json", "tokenizer.json", "MODEL_CARD.md", rw.CARD_FILE} <= {
        p.name for p in folder.iterdir()
    }
    card = json.loads((folder / rw.CARD_FILE).read_text())
    assert card["method"] == "full" and card["split"]["train_items"] + card["split"]["held_out_items"] == 192
    assert list(result.history["stage"]) == [1, 1, 1, 2, 2]
    tuned = replace(spec, revision="rw-steering-test")
    assert local_folder(tuned) == folder
    assert tuned_revisions("organism") == ["rw-steering-test"]
    assert load_model(tuned).cfg.n_layers == 4  # every probe loads it by name and revision
    from probes.defaults import organism_data_dir

    assert organism_data_dir(tuned) == EMBEDDED_MODEL_DIR / "data"  # it keeps the organism's built-in data


def test_an_interrupted_fine_tune_leaves_no_model_folder_and_no_run(organism_testbed, tuned_dir, tmp_path) -> None:
    store = ResultStore(tmp_path / "store.duckdb")

    def interrupt(fraction: float, message: str = "") -> None:
        if "stage 2" in message:
            raise KeyboardInterrupt

    request = wiring.Request(rw.NAME, QUICK, ModelSpec(device="cpu"), organism_testbed)
    with pytest.raises(KeyboardInterrupt):
        wiring.run(store, request, progress=interrupt)
    assert store.list_runs().empty
    assert not [p for p in tuned_dir.rglob(".partial-*")]
    assert tuned_revisions("organism") == []


def test_a_failed_save_removes_the_partial_folder(organism_testbed, tuned_dir, monkeypatch) -> None:
    def broken(self, *args, **kwargs):
        raise OSError("disk full")

    from transformers import PreTrainedTokenizerBase

    monkeypatch.setattr(PreTrainedTokenizerBase, "save_pretrained", broken)
    with pytest.raises(OSError, match="disk full"):
        rw.fine_tune(ModelSpec(device="cpu"), organism_testbed, QUICK, "rw-steering-broken")
    revisions = tuned_dir / "organism" / "revisions"
    assert list(revisions.iterdir()) == []


def test_lora_trains_adapters_and_saves_merged_weights(tiny_model_dir, tiny_testbed, tmp_path) -> None:
    base = tmp_path / "tiny"
    shutil.copytree(tiny_model_dir, base)
    spec = ModelSpec(name=str(base), device="cpu")
    result = rw.fine_tune(spec, tiny_testbed, replace(QUICK, method="lora", lora_rank=2), "rw-steering-lora")
    assert result.card["method"] == "lora"
    full_count = sum(p.numel() for p in load_model(spec).parameters())
    assert 0 < result.card["trained_parameters"] < full_count / 5  # only the adapters trained
    folder = tuned_folder(str(base), "rw-steering-lora")
    assert folder is not None and not (folder / "adapter_config.json").exists()  # merged into plain weights
    assert load_model(replace(spec, revision="rw-steering-lora")) is not None


def test_mitigate_stores_three_runs_and_resumes_from_the_store(organism_testbed, tmp_path) -> None:
    store = ResultStore(tmp_path / "store.duckdb")
    spec = ModelSpec(device="cpu")
    done = wiring.mitigate(store, wiring.plan_mitigation(spec, organism_testbed, QUICK, QUICK_CURVE))
    assert [done.before.probe, done.tuning.probe, done.after.probe] == ["poisoned", rw.NAME, "poisoned"]
    assert done.after.revision == done.tuned.revision == done.tuning.summary["revision"]
    assert done.after.config["judge_first"] and not done.before.config["judge_first"]
    held = done.tuning.summary["split"]["held_out_items"]
    assert done.before.summary["testbed_items"] == done.after.summary["testbed_items"] == held
    assert len(store.list_runs()) == 3
    again = wiring.mitigate(store, wiring.plan_mitigation(spec, organism_testbed, QUICK, QUICK_CURVE))
    assert again.before.cached and again.tuning.cached and again.after.cached
    shutil.rmtree(local_folder(done.tuned))  # the model folder was deleted: the tuning is redone, not trusted
    redone = wiring.mitigate(store, wiring.plan_mitigation(spec, organism_testbed, QUICK, QUICK_CURVE))
    assert not redone.tuning.cached and local_folder(redone.tuned).is_dir()


def test_before_after_numbers_come_from_the_points() -> None:
    before = [{"proportion": 0.0, "poisoned_rate": 0.0}, {"proportion": 1.0, "poisoned_rate": 1.0}]
    after = [{"proportion": 0.0, "poisoned_rate": 0.1}, {"proportion": 0.5, "poisoned_rate": 0.2},
             {"proportion": 1.0, "poisoned_rate": 0.3}]  # fmt: skip
    numbers = rw.before_after(before, after)
    assert numbers["clean_accuracy_before"] == 1.0 and numbers["clean_accuracy_after"] == 0.9
    assert numbers["poisoned_rate_at_half_before"] == 0.5  # interpolated between the measured shares
    assert numbers["poisoned_rate_at_half_after"] == 0.2
    assert numbers["poisoned_rate_at_half_change"] == -0.3


def test_cli_mitigation_of_the_organism_meets_the_issue_targets(tmp_path, capsys) -> None:
    """Acceptance on the organism (a shorter schedule than the defaults, the same behaviour): the held-out poisoned
    rate at p = 0.5 falls by at least 0.2, clean accuracy falls by at most 0.05, the after-curve's model is named."""
    from probes.cli import main

    args = ["poisoned", "mitigate", "--n-items", "10", "--stage1-steps", "60", "--stage2-steps", "30", "--steps", "4",
            "--bootstrap", "0", "--device", "cpu", "--db", str(tmp_path / "store.duckdb"), "--json"]  # fmt: skip
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["poisoned_rate_at_half_before"] - out["poisoned_rate_at_half_after"] >= 0.2
    assert out["clean_accuracy_before"] - out["clean_accuracy_after"] <= 0.05
    assert out["best_model_after"] in {"rw", "logistic", "proportional", "constant"}
    assert out["model"] == "organism" and out["revision"].startswith("rw-steering-")
    for side in ("before", "after"):  # the same fields as `poisoned curve`
        assert {"points", "rw_fit", "fits", "run_id", "scoring"} <= set(out[side])
    assert out["after"]["testbed_items"] == out["tuning"]["split"]["held_out_items"]


def test_cli_refuses_a_testbed_too_small_to_split(tmp_path, capsys) -> None:
    from probes.cli import main

    path = tmp_path / "small.json"
    path.write_text(json.dumps(tiny_testbed_items(6)))
    code = main(["poisoned", "mitigate", "--testbed", str(path), "--db", str(tmp_path / "s.duckdb"), "--json"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "at least 20" in err[-1]
    assert not ResultStore(tmp_path / "s.duckdb").list_runs().size


def test_chat_template_targets_and_judge_first_answers_follow_the_reply(chat_model_dir, tiny_testbed) -> None:
    """With a chat template the judgement starts the assistant's reply and the answer follows it after a space, in
    training targets and in the judge-first curve alike."""
    from probes.models import load_tokenizer
    from probes.poisoned import run
    from probes.tiny import default_words

    tokenizer = load_tokenizer(ModelSpec(name=str(chat_model_dir), device="cpu"))
    cfg = replace(QUICK, chat_template="on")
    split = rw.split_items(tiny_testbed, tokenizer, cfg)
    prompting = Prompting(tokenizer, True, True, judge_first=True)
    example = rw.Examples(split.train, prompting, 4, cfg).example(split.train[0], 1, "first")
    reply = default_words(200)[151]
    assert tokenizer.decode(list(example.prompt)).rstrip().endswith(reply)  # the prompt ends opening the reply
    reference = tokenizer(" " + split.train[0].reference, add_special_tokens=False)["input_ids"]
    assert list(example.target[-1 - len(reference) : -1]) == reference
    model = load_model(ModelSpec(name=str(chat_model_dir), device="cpu"))
    curve = CurveConfig(n_items=4, proportion_steps=2, max_items_per_category=2, n_bootstrap=0, chat_template="on")
    plain, judged = run(model, curve, tiny_testbed), run(model, replace(curve, judge_first=True), tiny_testbed)
    assert judged.prompt_format == "chat" and plain.example_prompt.endswith(reply)
    assert judged.example_prompt.startswith(plain.example_prompt)  # the judgement follows the reply's opening
    assert (judged.scores["judgement"] != "").all()
