"""Chat templates (issue 16): prompts go through the tokenizer's template by default when it has one, with a switch
(auto, on, off) that is part of the run key; the JSON names the prompt format and shows the first prompt exactly as
the model reads it; one BOS; answers start the assistant's reply; a broken template is one clear message."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest

from cache.keys import RunKey
from probes.cli import main
from probes.models import ModelSpec, load_model
from probes.poisoned import NAME, VERSION, CurveConfig, ExploreConfig, ExploreInput, explore
from probes.poisoned.probe import Prompting
from probes.tiny import default_words
from probes.tokens import answer_ids, as_model_reads, text_ids, uses_chat

WORDS = default_words(200)
TEMPLATE_USER, TEMPLATE_REPLY = WORDS[150], WORDS[151]  # the chat_model_dir fixture's template words (conftest)


@pytest.fixture(scope="module")
def chat_model(chat_model_dir: Path):
    return load_model(ModelSpec(name=str(chat_model_dir), device="cpu"))


def test_modes_decide_from_the_tokenizer(chat_model, tiny_model) -> None:
    assert uses_chat(chat_model.tokenizer, "auto") and uses_chat(chat_model.tokenizer, "on")
    assert not uses_chat(chat_model.tokenizer, "off") and not uses_chat(tiny_model.tokenizer, "auto")
    with pytest.raises(ValueError, match="has no chat template"):
        uses_chat(tiny_model.tokenizer, "on")
    with pytest.raises(ValueError, match="Unknown chat-template mode"):
        uses_chat(tiny_model.tokenizer, "sometimes")


def test_a_chat_prompt_has_one_bos_and_the_answer_starts_the_reply(chat_model) -> None:
    tokenizer = chat_model.tokenizer
    prompting = Prompting(tokenizer, chat=True, prepend_bos=True)
    choice = prompting.choices(f"the {WORDS[0]} of {WORDS[1]} is", (WORDS[2], WORDS[3]))
    assert choice.prompt.count(tokenizer.bos_token_id) == 1 and choice.prompt[0] == tokenizer.bos_token_id
    assert list(choice.prompt[-1:]) == text_ids(tokenizer, TEMPLATE_REPLY)  # the reply's start closes the prompt
    assert list(choice.answers[0]) == answer_ids(tokenizer, WORDS[2], leading_space=False)
    assert prompting.shown(choice).split()[:2] == ["<bos>", TEMPLATE_USER]


def test_a_broken_template_is_one_clear_message(chat_model) -> None:
    tokenizer = chat_model.tokenizer
    saved = tokenizer.chat_template
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }"  # unclosed tag
    try:
        with pytest.raises(ValueError, match="chat template failed to render"):
            as_model_reads(tokenizer, "hello", chat=True)
    finally:
        tokenizer.chat_template = saved


def test_the_choice_is_part_of_the_run_key() -> None:
    identity = {"model_id": "m"}
    keys = {RunKey.build(NAME, VERSION, identity, CurveConfig(chat_template=m)).run_id() for m in ("auto", "on", "off")}
    assert len(keys) == 3 and asdict(CurveConfig())["chat_template"] == "auto"


def curve_json(capsys, model_dir: Path, tmp_path: Path, *extra: str) -> tuple[int, dict, str]:
    testbed = tmp_path / "testbed.json"
    from tests.probes.test_poisoned import tiny_testbed_items

    testbed.write_text(json.dumps(tiny_testbed_items(4)))
    argv = ["poisoned", "curve", "--model", str(model_dir), "--testbed", str(testbed), "--n-items", "4", "--steps",
            "2", "--bootstrap", "0", "--db", str(tmp_path / "r.duckdb"), "--json", *extra]  # fmt: skip
    code = main(argv)
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else {}), err


def test_curve_json_names_the_format_and_shows_the_prompt(capsys, chat_model_dir, tiny_model_dir, tmp_path) -> None:
    code, chat, _ = curve_json(capsys, chat_model_dir, tmp_path)
    assert code == 0 and chat["prompt_format"] == "chat"
    shown = chat["example_prompt"].split()
    assert shown[:2] == ["<bos>", TEMPLATE_USER] and shown[-1] == TEMPLATE_REPLY
    code, plain, _ = curve_json(capsys, chat_model_dir, tmp_path, "--chat-template", "off")
    assert code == 0 and plain["prompt_format"] == "plain" and TEMPLATE_USER not in plain["example_prompt"].split()
    assert plain["run_id"] != chat["run_id"]
    code, _, err = curve_json(capsys, tiny_model_dir, tmp_path, "--chat-template", "on")
    last = err.strip().splitlines()[-1]  # (the weights' loading bar may come first)
    assert code == 2 and last.startswith("error:") and "no chat template" in last


def test_explore_reports_the_full_prompt_as_the_model_reads_it(chat_model) -> None:
    data = ExploreInput(
        f"the {WORDS[0]} of {WORDS[1]} is ?", (f"{WORDS[1]} is {WORDS[2]} .",), (), (WORDS[2], WORDS[3])
    )
    result = explore(chat_model, ExploreConfig(generate=False), data)
    assert result.prompt_format == "chat" and result.summary()["prompt"].split()[:2] == ["<bos>", TEMPLATE_USER]
    assert WORDS[2] in result.summary()["prompt"]  # the context segment is inside the user turn
    assert result.summary()["example_prompt"] == result.summary()["prompt"]


def test_steering_vectors_and_sweep_go_through_the_template(capsys, chat_model_dir, tmp_path) -> None:
    from tests.probes.test_steering_cli import prompts_file, sweep_args

    prompts = prompts_file.__wrapped__(tmp_path)  # the tiny prompt sets the steering CLI tests use
    argv = [*sweep_args(chat_model_dir, prompts), "--unit", "raw", "--db", str(tmp_path / "s.duckdb"), "--json"]
    assert main(argv) == 0
    sweep = json.loads(capsys.readouterr().out)
    assert sweep["prompt_format"] == "chat" and sweep["example_prompt"].split()[:2] == ["<bos>", TEMPLATE_USER]
    assert main([*argv, "--chat-template", "off"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert plain["prompt_format"] == "plain" and plain["vector_run_id"] != sweep["vector_run_id"]


def test_a_context_too_short_for_three_shares_is_one_clear_message(chat_model) -> None:
    from probes.poisoned.probe import check_enough_shares

    chat = Prompting(chat_model.tokenizer, chat=True, prepend_bos=True)
    with pytest.raises(ValueError, match="Only 1 testbed item") as error:
        check_enough_shares(1, 256, CurveConfig(proportion_steps=2), chat)
    assert "chat template" in str(error.value) and "plain prompt format" in str(error.value)
    assert "more share steps" not in str(error.value)  # one item gives 0% and 100% whatever the steps
    with pytest.raises(ValueError, match="more share steps"):
        check_enough_shares(2, 256, CurveConfig(proportion_steps=1), chat)
    check_enough_shares(2, 256, CurveConfig(proportion_steps=2), chat)  # 0, 1, 2 bad items: enough


def test_a_tokenizer_without_a_bos_token_still_runs_every_prompt_probe(tiny_model_dir, tmp_path, capsys) -> None:
    folder = tmp_path / "no-bos"
    shutil.copytree(tiny_model_dir, folder)
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["bos_token"] = None
    config_path.write_text(json.dumps(config))
    model = load_model(ModelSpec(name=str(folder), device="cpu"))
    bos = model.tokenizer.bos_token_id  # TransformerLens stands the EOS in for a missing BOS
    assert bos in (None, model.tokenizer.eos_token_id)
    choice = Prompting(model.tokenizer, chat=False, prepend_bos=True).choices(f"the {WORDS[0]} is", (WORDS[1],))
    assert choice.prompt[1 if bos is not None else 0 :] == tuple(text_ids(model.tokenizer, f"the {WORDS[0]} is"))
    code, result, err = curve_json(capsys, folder, tmp_path)
    assert code == 0, err
    assert result["prompt_format"] == "plain" and result["points"]
