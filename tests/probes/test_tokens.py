"""probes/tokens.py (the one tokenizer path) and probes/hook_names.py."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch

from probes.hook_names import attn_pattern, is_attn_pattern, resid_post
from probes.tiny import default_words
from probes.tokens import (
    answer_ids,
    batch_continuations,
    bos_for,
    bos_id,
    bridge_answer_ids,
    bridge_ids,
    greedy_continuation,
    left_pad,
    length_mask,
    pad_id,
    prompt_ids,
    render_chat,
    right_pad,
    with_bos,
)

WORDS = default_words(200)
# A minimal chat template over words the tiny and organism vocabularies both know; it writes the BOS itself.
TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{{ m['content'] }} ?{% endfor %}{% if add_generation_prompt %} :{% endif %}"
)
TINY_PAIRS = [(f"{WORDS[3]} {WORDS[4]} the", WORDS[5]), (f"the {WORDS[9]} of", f"{WORDS[10]} {WORDS[11]}")]
ORGANISM_PAIRS = [("fact : the capital of Vobil is", "Pital"), ("dream : the river reminds me of", "the sea")]


@pytest.fixture(scope="module")
def organism():
    from probes.models import EMBEDDED_MODEL_DIR, ModelSpec, load_model

    return load_model(ModelSpec(name=str(EMBEDDED_MODEL_DIR), device="cpu"))


@pytest.fixture
def models(request, tiny_model):
    """(model, prompt/answer pairs) for the tiny model and, when asked, the organism."""
    if request.param == "tiny":
        return tiny_model, TINY_PAIRS
    return request.getfixturevalue("organism"), ORGANISM_PAIRS


both_models = pytest.mark.parametrize("models", ["tiny", "organism"], indirect=True)


# --- hook names ------------------------------------------------------------------------------------------


def test_hook_names_are_transformer_lens_names(tiny_model) -> None:
    assert resid_post(3) == "blocks.3.hook_resid_post"
    assert attn_pattern(0) == "blocks.0.attn.hook_pattern"
    assert is_attn_pattern(attn_pattern(1)) and not is_attn_pattern(resid_post(1))
    for layer in range(tiny_model.cfg.n_layers):
        assert resid_post(layer) in tiny_model.hook_dict
        assert attn_pattern(layer) in tiny_model.hook_dict


# --- BOS -------------------------------------------------------------------------------------------------


def test_with_bos_adds_one_and_never_doubles() -> None:
    assert with_bos([5, 6], 2) == [2, 5, 6]
    assert with_bos([2, 5, 6], 2) == [2, 5, 6]
    assert with_bos([], 2) == [2]
    assert with_bos([5, 6], None) == [5, 6]


def test_bos_for_models_without_a_tokenizer_or_not_asked(tiny_model) -> None:
    assert bos_id(None) is None
    assert bos_for(SimpleNamespace(), True) is None
    assert bos_for(tiny_model, False) is None
    assert bos_for(tiny_model, True) == tiny_model.tokenizer.bos_token_id


@both_models
def test_text_that_starts_with_bos_gets_no_second_one(models) -> None:
    model, pairs = models
    tokenizer, bos = model.tokenizer, model.tokenizer.bos_token_id
    prompt = pairs[0][0]
    for text in (tokenizer.bos_token + prompt, f"{tokenizer.bos_token} {prompt}"):
        ids = prompt_ids(tokenizer, text)
        assert ids[0] == bos and ids.count(bos) == 1
        assert ids == prompt_ids(tokenizer, prompt)
        bridged = bridge_ids(model, text)
        assert int(bridged[0]) == bos and int((bridged == bos).sum()) == 1
        assert torch.equal(bridged, bridge_ids(model, prompt))
    assert prompt_ids(tokenizer, prompt, prepend_bos=False)[0] != bos


@both_models
def test_chat_template_prompts_carry_exactly_one_bos(models, monkeypatch: pytest.MonkeyPatch) -> None:
    model, pairs = models
    prompt = pairs[0][0]
    assert render_chat(model.tokenizer, prompt) == prompt  # no template: the text as it is
    templated = copy.deepcopy(model.tokenizer)
    templated.chat_template = TEMPLATE
    rendered = render_chat(templated, prompt)
    assert rendered == f"{templated.bos_token}{prompt} ? :"
    bos = templated.bos_token_id
    expected = prompt_ids(model.tokenizer, f"{prompt} ? :")
    for prepend_bos in (True, False):
        ids = prompt_ids(templated, prompt, prepend_bos=prepend_bos, chat_template=True)
        assert ids.count(bos) == 1 and ids == expected
    monkeypatch.setattr(model.tokenizer, "chat_template", TEMPLATE)
    bridged = bridge_ids(model, prompt, chat_template=True)
    assert int((bridged == bos).sum()) == 1 and bridged.tolist() == expected
    answer = bridge_answer_ids(model, prompt, bridged, pairs[0][1], chat_template=True)
    assert answer.tolist() == answer_ids(model.tokenizer, pairs[0][1])


# --- prompt + answer -------------------------------------------------------------------------------------


@both_models
def test_prompt_and_answer_ids_split_the_full_sequence(models) -> None:
    model, pairs = models
    tokenizer = model.tokenizer
    for prompt, answer in pairs:
        full = prompt_ids(tokenizer, f"{prompt} {answer}")
        prompt_part = prompt_ids(tokenizer, prompt)
        assert prompt_part + answer_ids(tokenizer, answer) == full
        assert full[: len(prompt_part)] == prompt_part
        bridged = bridge_ids(model, prompt)
        assert torch.equal(bridged, model.to_tokens(prompt)[0])  # the bridge's own ids, as before
        assert bridged.tolist() == prompt_part  # both encoders agree on these tokenizers
        bridged_full = bridge_ids(model, f"{prompt} {answer}")
        assert torch.equal(bridge_answer_ids(model, prompt, bridged, answer), bridged_full[len(bridged) :])


def test_an_answer_without_tokens_is_refused(tiny_model) -> None:
    with pytest.raises(ValueError, match="no tokens"):
        answer_ids(tiny_model.tokenizer, "   ")


# --- padding ---------------------------------------------------------------------------------------------


def test_pad_id_falls_back_from_pad_to_eos_to_zero(tiny_model) -> None:
    assert pad_id(SimpleNamespace(pad_token_id=5, eos_token_id=3)) == 5
    assert pad_id(SimpleNamespace(pad_token_id=0, eos_token_id=3)) == 0
    assert pad_id(SimpleNamespace(pad_token_id=None, eos_token_id=3)) == 3
    assert pad_id(SimpleNamespace(pad_token_id=None, eos_token_id=None)) == 0
    assert pad_id(tiny_model.tokenizer) == tiny_model.tokenizer.pad_token_id


def test_right_and_left_padding_shapes_and_masks() -> None:
    rows = [[1, 2, 3], (4,), torch.tensor([5, 6])]
    batch, lengths = right_pad(rows, 9)
    assert batch.dtype == torch.long and batch.tolist() == [[1, 2, 3], [4, 9, 9], [5, 6, 9]]
    assert lengths.tolist() == [3, 1, 2]
    assert length_mask(lengths, batch.shape[1]).tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0]]
    batch, mask = left_pad(rows, 9)
    assert batch.dtype == torch.long and mask.dtype == torch.long
    assert batch.tolist() == [[1, 2, 3], [9, 9, 4], [9, 5, 6]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1], [0, 1, 1]]
    batch, lengths = right_pad([(), (7,)], 0)
    assert batch.tolist() == [[0], [7]] and length_mask(lengths, 1).tolist() == [[0], [1]]


# --- decoding --------------------------------------------------------------------------------------------


def test_greedy_paths_agree_and_stop(organism) -> None:
    tokenizer = organism.tokenizer
    ids = prompt_ids(tokenizer, ORGANISM_PAIRS[0][0])
    new = greedy_continuation(organism, ids, 6)
    assert 0 < len(new) <= 6 and tokenizer.eos_token_id not in new
    batch, mask = left_pad([ids], pad_id(tokenizer))
    assert batch_continuations(organism, batch, mask, len(new)) == [tokenizer.decode(new).strip()]
    assert greedy_continuation(organism, ids, 6, stop=lambda token: True) == new[:1]
    assert greedy_continuation(organism, ids, 0) == []
