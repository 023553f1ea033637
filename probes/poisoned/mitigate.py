"""RW-Steering: two-stage fine-tuning that teaches a model to judge its context, then answer (METHODS.md section 3).

Training examples are testbed contexts in the curve probe's prompt format (`contexts.render_prompt`, source tags,
the chat template when the curve would use one). The target first judges the context, then answers:
"Reliable items: 1, 3, 4. <reference answer>" (our wording of the paper's "sentences 2, 4 are reliable; only these
can be used"), then EOS; the loss is on the target tokens only.

* Stage 1: contexts with every share of inappropriate items (0..n, uniform) at every position setting.
* Stage 2: continues from stage 1 and adds examples with only a few inappropriate items (1..`few_inappropriate`),
  the regime where a small share already moves the answer most; half of stage 2's examples are of this kind.
* Items are split into train and held-out sets by question, with a fixed seed (`split_items`); nothing held out is
  trained on, and the before/after curves are measured on the held-out items only.
* Full fine-tuning for small models (AdamW on every weight); LoRA through `peft` (rank r on every linear layer,
  merged into the weights after training) for models above `FULL_MAX_PARAMETERS`, or when asked.
* The tuned model is saved as a revision folder of the base model (`probes.models.tuned_folder`: safetensors,
  tokenizer, `MODEL_CARD.md` and `rw_steering.json` saying how it was made), written to a hidden folder and renamed
  into place only when complete, so an interrupted run leaves no half-written model.

The tuned model answers after its own judgement; its curve is measured with `CurveConfig(judge_first=True)`: the
model writes its judgement greedily, then the reference and the claim are scored by forced choice after it.
Mitigation curves are scored by the plain summed log-probability (`scoring="sum"`, the CLI's and the tab's default),
not the calibrated score: calibration subtracts each answer's log-probability after a content-free prompt, and the
tuning itself teaches the model to answer from its own knowledge when no item is reliable, so after tuning the
content-free answer is the reference and calibration cancels the very answer we measure (measured on the organism:
held-out clean accuracy 0.53 calibrated against 1.00 summed for the same tuned model).

Measured on the organism (defaults, 134 train / 58 held-out items, 20 items per context, 2 CPU cores: 37 s of
training, 70 s in all): held-out poisoned rate at p = 0.5 0.83 -> 0.00, clean accuracy 1.00 -> 1.00; the after-curve
is flat at 0 (best model: constant). With learning rate 1e-3 and twice the steps the model overfits its train
questions: held-out clean accuracy fell to 0.74.

Deviations from the paper: the paper scores free answers with an LLM judge (Consistency, Cleanliness); we score by
forced choice (the curve probe), so "quality" here is the held-out poisoned rate and the clean accuracy. The paper's
data pipeline rewrites the testbed's answers with an LLM; our targets are built from the testbed's fields.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from probes.models import ModelLoadError, ModelSpec, local_folder, resolve_device, tuned_base_dir
from probes.poisoned.contexts import NO_ITEM_WORDS, POSITIONS, judgement, poisoned_segments, render_prompt
from probes.poisoned.probe import CurveConfig, Prompting, distinguishable, fitting_n_items
from probes.poisoned.testbed import Testbed, TestbedItem, items_digest
from probes.tokens import CHAT_MODES, answer_ids, pad_id, right_pad, uses_chat

NAME = "poisoned-rw-steering"
VERSION = "1"
METHODS = ("auto", "full", "lora")
FULL_MAX_PARAMETERS = 100_000_000  # above this, "auto" fine-tunes with LoRA
MIN_ITEMS = 20  # usable testbed items needed to split into train and held-out sets
REVISION_PREFIX = "rw-steering-"
CARD_FILE = "rw_steering.json"
# Card fields that differ between two runs of the same training; kept out of the folder's rw_steering.json, whose
# bytes are part of the folder's content digest (the same training must give the same model identity and run ids).
VARYING_CARD_FIELDS = ("train_time_s",)
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class MitigateConfig:
    """How RW-Steering fine-tunes; every field goes into the run key (and the tuned revision's name)."""

    held_out_share: float = 0.3  # share of questions held out for the before/after curves
    split_seed: int = 0  # the train/held-out split's seed
    n_items: int = 20  # context items per training example (lowered to what fits, as the curve does)
    stage1_steps: int = 150  # optimizer steps of stage 1 (every share of inappropriate items)
    stage2_steps: int = 75  # optimizer steps of stage 2 (half of the examples with only a few inappropriate items)
    few_inappropriate: int = 3  # stage 2's "few": 1..few inappropriate items
    batch_size: int = 8
    learning_rate: float = 3e-4  # AdamW (1e-3 for 450 steps overfits the organism: held-out clean accuracy 0.74)
    method: str = "auto"  # auto (full up to FULL_MAX_PARAMETERS, else LoRA), full, lora
    lora_rank: int = 8
    lora_alpha: int = 16
    source_tags: bool = True  # as the curve's: reputable / disreputable "(From <source>)" tags
    chat_template: str = "auto"  # as the curve's: auto, on, off
    prepend_bos: bool = True
    seed: int = 0  # example sampling and weight init of LoRA


def validate_config(cfg: MitigateConfig) -> None:
    if not 0.05 <= cfg.held_out_share <= 0.8:
        raise ValueError("held_out_share must lie in 0.05..0.8.")
    if cfg.n_items < 2:
        raise ValueError("n_items must be at least 2.")
    if cfg.stage1_steps < 1 or cfg.stage2_steps < 0:
        raise ValueError("stage1_steps must be at least 1 and stage2_steps at least 0.")
    if cfg.batch_size < 1 or not cfg.learning_rate > 0:
        raise ValueError("batch_size must be at least 1 and learning_rate positive.")
    if cfg.method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}.")
    if cfg.chat_template not in CHAT_MODES:
        raise ValueError(f"chat_template must be one of {', '.join(CHAT_MODES)}.")
    if cfg.few_inappropriate < 1:
        raise ValueError("few_inappropriate must be at least 1.")


# ---------------------------------------------------------------------------------------------- the split


@dataclass(frozen=True)
class Split:
    train: tuple[TestbedItem, ...]
    held_out: Testbed  # a testbed of its own, so the curve probe scores it (and digests it) like any other

    def describe(self) -> dict:
        return {
            "train_items": len(self.train),
            "held_out_items": len(self.held_out.items),
            "held_out_digest": self.held_out.digest,
        }


def split_items(testbed: Testbed, tokenizer, cfg: MitigateConfig) -> Split:
    """Usable items (reference and claim tell apart under the tokenizer) split by question with `split_seed`.

    Raises ValueError when fewer than MIN_ITEMS items are usable."""
    usable, _skipped = distinguishable(tokenizer, list(testbed.items))
    if len(usable) < MIN_ITEMS:
        raise ValueError(
            f"The testbed has {len(usable)} usable items (reference and claim that tokenize differently); "
            f"RW-Steering needs at least {MIN_ITEMS} to split into train and held-out sets."
        )
    questions = sorted({item.question for item in usable})
    random.Random(f"split-{cfg.split_seed}").shuffle(questions)
    n_held = min(len(questions) - 1, max(1, round(cfg.held_out_share * len(questions))))
    held_questions = set(questions[:n_held])
    held = tuple(item for item in usable if item.question in held_questions)
    train = tuple(item for item in usable if item.question not in held_questions)
    source = f"{testbed.source or 'testbed'} (held out, seed {cfg.split_seed})"
    return Split(train, Testbed(held, (), source, testbed.formats, items_digest(held)))


# ---------------------------------------------------------------------------------------------- examples


@dataclass(frozen=True)
class Example:
    prompt: tuple[int, ...]  # [bos] + prompt ids (through the chat template when used)
    target: tuple[int, ...]  # judgement, answer, EOS


class Examples:
    """Training examples drawn with a seed: a random train item, share and position setting each."""

    def __init__(self, items: tuple[TestbedItem, ...], prompting: Prompting, n_items: int, cfg: MitigateConfig):
        self.items, self.prompting, self.n_items, self.cfg = items, prompting, n_items, cfg
        self.rng = random.Random(f"examples-{cfg.seed}")
        tokenizer = prompting.tokenizer
        self.none_word = next((w for w in NO_ITEM_WORDS if tokenizer.unk_token_id not in _ids(tokenizer, w)), "0")
        self.eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []

    def draw(self, stage: int) -> Example:
        item = self.rng.choice(self.items)
        few = stage == 2 and self.rng.random() < 0.5
        n_bad = self.rng.randint(1, min(self.cfg.few_inappropriate, self.n_items)) if few else None
        n_bad = self.rng.randint(0, self.n_items) if n_bad is None else n_bad
        return self.example(item, n_bad, self.rng.choice(POSITIONS))

    def example(self, item: TestbedItem, n_bad: int, position: str) -> Example:
        segments = poisoned_segments(item, self.n_items, n_bad, position, self.rng, self.cfg.source_tags)
        choice = self.prompting.choices(render_prompt(segments, item.question), (item.reference,))
        tokenizer = self.prompting.tokenizer
        judged = answer_ids(tokenizer, judgement(segments, self.none_word), not self.prompting.chat)
        return Example(choice.prompt, tuple(judged) + choice.answers[0] + tuple(self.eos))

    def batches(self, stage: int, steps: int, size: int) -> Iterator[list[Example]]:
        for _ in range(steps):
            yield [self.draw(stage) for _ in range(size)]


def _ids(tokenizer, word: str) -> list[int]:
    return list(tokenizer(" " + word, add_special_tokens=False)["input_ids"])


def training_n_items(prompting: Prompting, items: tuple[TestbedItem, ...], n_ctx: int, cfg: MitigateConfig) -> int:
    """The curve's rule for how many items fit (`fitting_n_items` with the judgement's tokens reserved)."""
    curve = CurveConfig(n_items=cfg.n_items, source_tags=cfg.source_tags, judge_first=True)
    return fitting_n_items(prompting, list(items), cfg.n_items, n_ctx, curve)


def batch_tensors(batch: list[Example], pad: int, device: str) -> tuple[torch.Tensor, ...]:
    """(ids, attention mask, labels) of right-padded prompt+target rows; labels -100 except on target tokens."""
    rows = [example.prompt + example.target for example in batch]
    ids, lengths = right_pad(rows, pad)  # (batch, pos), (batch,)
    mask = (torch.arange(ids.shape[1])[None, :] < lengths[:, None]).long()
    labels = torch.full_like(ids, -100)
    for row, example in enumerate(batch):
        start = len(example.prompt)
        labels[row, start : start + len(example.target)] = ids[row, start : start + len(example.target)]
    return ids.to(device), mask.to(device), labels.to(device)


# ---------------------------------------------------------------------------------------------- training


@dataclass(frozen=True)
class TuningResult:
    """What the RW-Steering fine-tuning run stores: its loss history and how the tuned revision was made."""

    history: pd.DataFrame  # one row per optimizer step: stage, step, loss, learning_rate
    card: dict  # base model, revision, method, split, settings, timings (also saved as rw_steering.json)

    def to_frame(self) -> pd.DataFrame:
        return self.history

    def to_tables(self) -> dict[str, pd.DataFrame]:
        return {"history": self.history}

    def summary(self) -> dict:
        return dict(self.card)

    @classmethod
    def from_stored(cls, tables: dict[str, pd.DataFrame], summary: dict, files: dict[str, bytes]) -> TuningResult:
        return cls(tables["history"], dict(summary))

    @property
    def revision(self) -> str:
        return str(self.card["revision"])

    @property
    def tuned_spec_fields(self) -> dict:
        return {"name": self.card["model"], "revision": self.revision}


def load_trainable(spec: ModelSpec, method: str):
    """A private, trainable copy of the model (plain transformers, never the shared TransformerBridge) and its
    tokenizer, on the spec's device: float32 for full fine-tuning, the spec's dtype under LoRA."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from probes.models import _explain_hub_error, check_fits, resolve_dtype

    check_fits(spec)
    device = resolve_device(spec.device)
    dtype = torch.float32 if method == "full" else resolve_dtype(device, spec.dtype)
    folder = local_folder(spec)
    source = str(folder) if folder is not None else spec.name
    revision = None if folder is not None else spec.revision
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, revision=revision, trust_remote_code=spec.trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            source, revision=revision, dtype=dtype, trust_remote_code=spec.trust_remote_code
        )
    except Exception as error:  # transformers raises many types for the same user mistakes
        raise ModelLoadError(_explain_hub_error(spec, error)) from None
    return model.to(device), tokenizer


def chosen_method(model, cfg: MitigateConfig) -> str:
    if cfg.method != "auto":
        return cfg.method
    return "full" if sum(p.numel() for p in model.parameters()) <= FULL_MAX_PARAMETERS else "lora"


def with_lora(model, cfg: MitigateConfig):
    """The model wrapped by peft with rank-r adapters on every linear layer (only they train)."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise ModelLoadError("LoRA fine-tuning needs peft: pip install -r requirements.txt.") from None
    config = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=0.0, target_modules="all-linear")
    return get_peft_model(model, config)


def fine_tune(
    spec: ModelSpec,
    testbed: Testbed,
    cfg: MitigateConfig,
    revision: str,
    progress: Progress | None = None,
) -> TuningResult:
    """Split the testbed, fine-tune a copy of the model in two stages and save it as revision `revision` of the
    base model (complete or not at all). Raises ValueError for a testbed too small to split."""
    validate_config(cfg)
    report = progress or (lambda fraction, message="": None)
    started = time.perf_counter()
    torch.manual_seed(cfg.seed)
    model, tokenizer = load_trainable(spec, "full" if cfg.method == "full" else "lora")
    method = chosen_method(model, cfg)
    if method == "full" and cfg.method == "auto" and next(model.parameters()).dtype != torch.float32:
        model = model.float()
    split = split_items(testbed, tokenizer, cfg)
    prompting = Prompting(tokenizer, uses_chat(tokenizer, cfg.chat_template), cfg.prepend_bos, judge_first=True)
    n_ctx = int(getattr(model.config, "max_position_embeddings", 0) or getattr(model.config, "n_positions", 512))
    n_items = training_n_items(prompting, split.train, n_ctx, cfg)
    trained = with_lora(model, cfg) if method == "lora" else model
    history = train_stages(trained, Examples(split.train, prompting, n_items, cfg), tokenizer, cfg, report)
    if method == "lora":
        trained = trained.merge_and_unload()
    card = {
        "model": spec.name,
        "base_revision": spec.revision,
        "revision": revision,
        "method": method,
        "trained_parameters": int(history.attrs.get("trained_parameters", 0)),
        "n_items": n_items,
        "prompt_format": prompting.format,
        "answer_format": "judgement first: 'Reliable items: 1, 3, 4.' then the answer",
        "split": split.describe(),
        "final_loss_stage1": _final_loss(history, 1),
        "final_loss_stage2": _final_loss(history, 2),
        "settings": asdict(cfg),
        "train_time_s": round(time.perf_counter() - started, 2),
    }
    report(0.97, "saving the tuned model")
    card["folder"] = str(save_revision(trained, tokenizer, spec, revision, card))
    report(1.0, "done")
    return TuningResult(history, card)


def _final_loss(history: pd.DataFrame, stage: int) -> float | None:
    rows = history[history["stage"] == stage]
    return None if rows.empty else round(float(rows["loss"].tail(10).mean()), 4)


def train_stages(model, examples: Examples, tokenizer, cfg: MitigateConfig, report: Progress) -> pd.DataFrame:
    """Stage 1 then stage 2 with one AdamW optimizer, linear warm-up over the first 5% of steps."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=cfg.learning_rate, weight_decay=0.0)
    total = cfg.stage1_steps + cfg.stage2_steps
    warmup = max(1, total // 20)
    device, pad = str(next(model.parameters()).device), pad_id(tokenizer)
    rows, step = [], 0
    model.train()
    for stage, steps in ((1, cfg.stage1_steps), (2, cfg.stage2_steps)):
        for batch in examples.batches(stage, steps, cfg.batch_size):
            rate = cfg.learning_rate * min(1.0, (step + 1) / warmup)
            for group in optimizer.param_groups:
                group["lr"] = rate
            ids, mask, labels = batch_tensors(batch, pad, device)
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            value = loss.item()
            if not math.isfinite(value):
                raise ValueError(f"The training loss became {value} at step {step}; lower the learning rate.")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, 1.0)
            optimizer.step()
            rows.append({"stage": stage, "step": step, "loss": value, "learning_rate": rate})
            step += 1
            report(0.95 * step / total, f"stage {stage}: step {step}/{total}, loss {value:.3f}")
    model.eval()
    history = pd.DataFrame(rows, columns=["stage", "step", "loss", "learning_rate"])
    history.attrs["trained_parameters"] = sum(p.numel() for p in parameters)
    return history


# ---------------------------------------------------------------------------------------------- saving


def revision_name(run_id: str) -> str:
    """The tuned revision's name: derived from the tuning run's id, so the same request names the same revision."""
    return f"{REVISION_PREFIX}{run_id[:12]}"


def save_revision(model, tokenizer, spec: ModelSpec, revision: str, card: dict) -> Path:
    """Save weights (safetensors), tokenizer and card into <tuned root>/<model>/revisions/<revision>, atomically:
    written into a hidden sibling folder and renamed into place when complete; removed on any failure."""
    final = tuned_base_dir(spec.name) / "revisions" / revision
    partial = final.parent / f".partial-{revision}-{uuid.uuid4().hex[:8]}"
    partial.parent.mkdir(parents=True, exist_ok=True)
    try:
        model.save_pretrained(partial, safe_serialization=True)
        tokenizer.save_pretrained(partial)
        kept = {name: value for name, value in card.items() if name not in VARYING_CARD_FIELDS}
        (partial / CARD_FILE).write_text(json.dumps(kept, indent=2, sort_keys=True))
        (partial / "MODEL_CARD.md").write_text(model_card(card))
        if final.exists():
            shutil.rmtree(final)
        os.replace(partial, final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return final


def model_card(card: dict) -> str:
    split = card["split"]
    return "\n".join(
        [
            f"# {card['model']} · {card['revision']} (RW-Steering fine-tuned)",
            "",
            f"Fine-tuned by AssocLens (`python -m probes poisoned mitigate`) from `{card['model']}`"
            + (f" revision `{card['base_revision']}`" if card.get("base_revision") else "")
            + f", method **{card['method']}** ({card['trained_parameters']:,} trained parameters).",
            "",
            "Two stages (METHODS.md section 3): stage 1 on contexts with every share of inappropriate items, stage 2 "
            "adding contexts with only a few. Targets judge the context first ('Reliable items: 1, 3, 4.'), then "
            "answer; measure its curves with `judge_first` on.",
            "",
            f"Train items: {split['train_items']}; held-out items: {split['held_out_items']} (never trained on; "
            f"digest {split['held_out_digest'][:16]}).",
            f"Final loss: stage 1 {card['final_loss_stage1']}, stage 2 {card['final_loss_stage2']}; "
            f"{card['train_time_s']} s.",
            "",
            "Settings:",
            "```json",
            json.dumps(card["settings"], indent=2, sort_keys=True),
            "```",
            "",
        ]
    )


# ---------------------------------------------------------------------------------------------- before / after


def rate_at(points: list[dict], share: float) -> float:
    """The poisoned rate at `share` (linear interpolation between measured shares; exact when measured)."""
    shares = [float(p["proportion"]) for p in points]
    rates = [float(p["poisoned_rate"]) for p in points]
    return float(np.interp(share, shares, rates))


def before_after(before: list[dict], after: list[dict]) -> dict:
    """The headline changes of a mitigation from the held-out curves' points (share, poisoned_rate per share).

    Clean accuracy: share of held-out items answered with the reference at share 0 (1 - poisoned rate there)."""
    numbers = {}
    for name, points in (("before", before), ("after", after)):
        numbers[f"clean_accuracy_{name}"] = round(1.0 - rate_at(points, 0.0), 6)
        numbers[f"poisoned_rate_at_half_{name}"] = round(rate_at(points, 0.5), 6)
    numbers["poisoned_rate_at_half_change"] = round(
        numbers["poisoned_rate_at_half_after"] - numbers["poisoned_rate_at_half_before"], 6
    )
    numbers["clean_accuracy_change"] = round(numbers["clean_accuracy_after"] - numbers["clean_accuracy_before"], 6)
    return numbers
