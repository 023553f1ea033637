"""Text to token ids for a loaded model (TransformerBridge: `model.tokenizer`, `model.to_tokens`, `model.cfg`).

The one place probes tokenize, pad and decode. Two encoders, kept apart because each probe's stored numbers were
measured with its own and must not move:

* `prompt_ids` / `answer_ids` (poisoned context, induction attention): the text's own ids (no special tokens added
  by the tokenizer), with the tokenizer's BOS put in front by `with_bos` when asked; an answer is tokenized on its
  own as " " + answer, so the scored tokens are exactly the answer's.
* `bridge_ids` / `bridge_answer_ids` (steering): the bridge's `to_tokens`, its own BOS rule
  (`cfg.default_prepend_bos`) and truncation to `n_ctx`, the ids `model.generate` would build from the string;
  an answer is whatever follows the prompt's ids in the ids of "prompt answer".

The BOS rule, everywhere: at most one BOS is added, and none when the text's ids already start with the BOS id
(e.g. a chat template that writes it), decided on ids, not on text. `render_chat` applies the tokenizer's chat
template; `uses_chat` decides from a probe's `chat_template` setting (auto, on, off) and `as_model_reads` formats a
prompt with it, so the poisoned and steering probes put every prompt through the template by default when the
tokenizer has one.

Batches: `pad_id` (pad token, else EOS, else 0), `right_pad` (with lengths, for full-sequence forwards) and
`left_pad` (with an attention mask, for generation and shared-prompt KV caches: the last prompt token is the last
column). Decoding: `greedy_continuation` (one full forward per new token, no cache) and `batch_continuations`
(the bridge's KV-cached `generate` on a left-padded batch).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

Row = Sequence[int] | torch.Tensor  # one sequence of token ids, (pos,)


# --- BOS and chat template -------------------------------------------------------------------------------


def bos_id(tokenizer) -> int | None:
    """The tokenizer's BOS id, or None (no tokenizer, or no BOS token)."""
    return None if tokenizer is None else tokenizer.bos_token_id


def bos_for(model, prepend_bos: bool) -> int | None:
    """The BOS id to put in front of a sequence built from ids for `model`, or None (not asked, or none exists).

    Works for models without a tokenizer (the induction scan's scratch models): None.
    """
    return bos_id(getattr(model, "tokenizer", None)) if prepend_bos else None


def with_bos(ids: Sequence[int], bos: int | None) -> list[int]:
    """`ids` with `bos` in front, never doubled: unchanged when `bos` is None or `ids` already start with it."""
    ids = list(ids)
    if bos is None or (ids and ids[0] == bos):
        return ids
    return [bos, *ids]


def render_chat(tokenizer, text: str) -> str:
    """`text` as one user turn of the tokenizer's chat template, ready for the assistant's reply.

    Unchanged when the tokenizer has no template. The result may begin with the BOS token's text; the encoders
    then add no second one.
    """
    if not getattr(tokenizer, "chat_template", None):
        return text
    messages = [{"role": "user", "content": text}]
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


CHAT_MODES = ("auto", "on", "off")  # auto: the chat template when the tokenizer has one


def uses_chat(tokenizer, mode: str) -> bool:
    """Whether prompts go through the tokenizer's chat template under `mode` (auto, on, off)."""
    if mode not in CHAT_MODES:
        raise ValueError(f"Unknown chat-template mode {mode!r}; choose {', '.join(CHAT_MODES)}.")
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if mode == "on" and not has_template:
        raise ValueError("This model's tokenizer has no chat template; choose 'auto' or 'off'.")
    return has_template and mode != "off"


def as_model_reads(tokenizer, text: str, chat: bool) -> str:
    """`text` as the prompt the model reads: one user turn of its chat template (ending where the assistant's reply
    starts) when `chat`, else unchanged. A template that fails to render is one clear ValueError."""
    if not chat:
        return text
    try:
        return render_chat(tokenizer, text)
    except Exception as error:  # jinja raises its own error types for a broken template
        raise ValueError(f"The model's chat template failed to render a prompt: {error}") from None


def prompt_format(chat: bool) -> str:
    """The `prompt_format` value a probe's JSON reports."""
    return "chat" if chat else "plain"


def shown_ids(tokenizer, ids: Sequence[int]) -> str:
    """Token ids as text with every special token written out (`example_prompt` in a probe's JSON)."""
    return tokenizer.decode(list(ids), skip_special_tokens=False)


# --- encoders --------------------------------------------------------------------------------------------


def text_ids(tokenizer, text: str) -> list[int]:
    """The text's own token ids (special tokens written in the text stay; none are added) -> (pos,)."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def prompt_ids(tokenizer, text: str, prepend_bos: bool = True, chat_template: bool = False) -> list[int]:
    """[BOS] + the text's own ids (BOS when asked and the tokenizer has one, never doubled) -> (pos,)."""
    if chat_template:
        text = render_chat(tokenizer, text)
    return with_bos(text_ids(tokenizer, text), bos_id(tokenizer) if prepend_bos else None)


def answer_ids(tokenizer, answer: str, leading_space: bool = True) -> list[int]:
    """Ids of " " + answer (stripped), tokenized on its own, to follow `prompt_ids` -> (n_answer,). Without the
    leading space (`leading_space=False`) after a chat prompt, where the assistant's reply starts a new line.

    Raises ValueError when the answer has no tokens.
    """
    ids = text_ids(tokenizer, (" " if leading_space else "") + answer.strip())
    if not ids:
        raise ValueError(f"The answer {answer!r} has no tokens under this model's tokenizer.")
    return ids


def bridge_ids(model, text: str, chat_template: bool = False) -> torch.Tensor:
    """(pos,) ids of `text` by the bridge's `to_tokens`: its default BOS rule, cut to `n_ctx`, BOS never doubled."""
    if chat_template:
        text = render_chat(model.tokenizer, text)
    ids = model.to_tokens(text, truncate=True)[0]
    bos = bos_id(model.tokenizer)
    if bos is not None and len(ids) > 1 and int(ids[0]) == bos and int(ids[1]) == bos:
        own = model.to_tokens(text, prepend_bos=False, truncate=True)[0]
        if len(own) and int(own[0]) == bos:  # the text brought its own BOS: keep only that one
            return own
    return ids


def bridge_answer_ids(
    model, prompt: str, prompt_ids: torch.Tensor, answer: str, chat_template: bool = False
) -> torch.Tensor:
    """(n_answer,) ids of " answer" as the model would see them after `prompt` (`prompt_ids` = its `bridge_ids`).

    The ids of "prompt answer" past the prompt's, when the prompt's ids are their prefix; otherwise (a merge across
    the boundary) " answer" tokenized alone without BOS. Raises ValueError when that is empty.
    """
    if chat_template:
        prompt = render_chat(model.tokenizer, prompt)
    full = bridge_ids(model, f"{prompt} {answer}")
    if len(full) > len(prompt_ids) and torch.equal(full[: len(prompt_ids)], prompt_ids):
        return full[len(prompt_ids) :]
    alone = model.to_tokens(f" {answer}", prepend_bos=False)[0]
    if len(alone) == 0:
        raise ValueError(f"The answer {answer!r} (to {prompt!r}) tokenizes to nothing.")
    return alone


# --- batches ---------------------------------------------------------------------------------------------


def pad_id(tokenizer) -> int:
    """The id padding positions hold: the pad token, else EOS, else 0 (masked or never read, but it must exist)."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if candidate is not None:
            return int(candidate)
    return 0


def right_pad(rows: Sequence[Row], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows stacked from position 0, padded on the right -> ((batch, pos) long ids on CPU, (batch,) lengths)."""
    lengths = torch.tensor([len(row) for row in rows])
    batch = torch.full((len(rows), int(lengths.max())), pad, dtype=torch.long)
    for index, row in enumerate(rows):
        batch[index, : len(row)] = torch.as_tensor(row, dtype=torch.long)
    return batch, lengths


def length_mask(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """(batch, width) long attention mask of right-padded rows: 1 on each row's first `lengths[row]` positions."""
    return (torch.arange(width).unsqueeze(0) < lengths.unsqueeze(1)).long()


def left_pad(rows: Sequence[Row], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows padded on the left, all ending in the last column -> ((batch, pos) long ids, (batch, pos) long mask)."""
    width = max(len(row) for row in rows)
    batch = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for index, row in enumerate(rows):
        batch[index, width - len(row) :] = torch.as_tensor(row, dtype=torch.long)
        mask[index, width - len(row) :] = 1
    return batch, mask


# --- decoding --------------------------------------------------------------------------------------------


def greedy_continuation(
    model, ids: Sequence[int], max_new_tokens: int, stop: Callable[[int], bool] | None = None
) -> list[int]:
    """Greedy new ids after the prompt `ids` (pos,), one full forward per token (no KV cache) -> (n_new,).

    Stops before EOS (not included), when the sequence fills the context, after `max_new_tokens`, or after the
    first new id for which `stop(id)` is true (included).
    """
    ids = list(ids)
    n_prompt = len(ids)
    eos = model.tokenizer.eos_token_id
    with torch.inference_mode():
        for _ in range(max_new_tokens):
            if len(ids) >= int(model.cfg.n_ctx):
                break
            logits = model(torch.tensor([ids], device=model.cfg.device), return_type="logits")  # (1, pos, vocab)
            next_id = int(logits[0, -1].argmax())
            if next_id == eos:
                break
            ids.append(next_id)
            if stop is not None and stop(next_id):
                break
    return ids[n_prompt:]


def generate_ids(
    model,
    batch: torch.Tensor,
    mask: torch.Tensor,
    max_new_tokens: int,
    do_sample: bool = False,
    temperature: float = 1.0,
    stop_id: int | None = None,
) -> torch.Tensor:
    """New ids of a `left_pad`ded batch ((batch, pos) ids and mask) by the bridge's KV-cached `generate` (positions
    from the mask; greedy unless `do_sample`; hooks attached to the model apply), a row stopping at `stop_id`
    (default EOS) -> (batch, new) on CPU; a stopped row is padded with the stop id."""
    out = model.generate(
        batch.to(model.cfg.device),
        attention_mask=mask.to(model.cfg.device),
        max_new_tokens=max_new_tokens,
        do_sample=do_sample,
        temperature=temperature,
        stop_at_eos=True,
        eos_token_id=stop_id,
        verbose=False,
    )
    return out[:, batch.shape[1] :].cpu()


def batch_continuations(
    model,
    batch: torch.Tensor,
    mask: torch.Tensor,
    max_new_tokens: int,
    do_sample: bool = False,
    temperature: float = 1.0,
) -> list[str]:
    """Continuations of a `left_pad`ded batch by `generate_ids`, stopped at EOS -> one text per row, special tokens
    dropped, stripped."""
    new = generate_ids(model, batch, mask, max_new_tokens, do_sample, temperature)
    return [model.tokenizer.decode(row, skip_special_tokens=True).strip() for row in new]
