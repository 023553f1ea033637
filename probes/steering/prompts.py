"""Prompt sets and evaluation facts for the steering probe: built-in defaults and user uploads.

Built-in defaults (`default_prompt_sets`): the embedded organism (and any organism-like local folder) gets its own
`data/steering_prompts.json`; every other model gets the English defaults in `probes/data/english/` (written for
this project). Both files, and a user's JSON object upload, go through the same parser (`_sets_from_object`).

Accepted user formats (`parse_prompt_sets`):
  * a JSON object {"faithful": [...], "associative": [...], "associative_words": [...], "facts": [...]};
  * JSONL, one object per line with `faithful` and/or `associative` string fields (a line may carry both);
  * plain text, one prompt per line (for one set at a time: `parse_lines`).
Facts (`parse_facts`): CSV with a header holding `prompt` (or `question`) and `answer` columns, JSONL or a JSON
list of {"prompt": ..., "answer": ...}.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from probes.defaults import (
    ENGLISH_DATA_DIR,
    ORGANISM_DATA_DIR,
    ORGANISM_MARKER,
    organism_data_dir,
    organism_data_folder,
)
from probes.models import ModelSpec
from probes.uploads import MAX_JSON_DEPTH, json_depth

STEERING_PROMPTS_FILE = ORGANISM_MARKER
FACTS_FILE = "facts.csv"
FAITHFUL_KEYS = ("faithful", "fact", "faithful_prompts")
ASSOCIATIVE_KEYS = ("associative", "hallucination", "dream", "associative_prompts")
PROMPT_KEYS = ("prompt", "fact_prompt", "qa_prompt", "question", "input")
VOCABULARY_KEYS = ("associative_words", "associative_vocabulary", "vocabulary")
ORGANISM_ASSOCIATIVE_SETS = {  # which built-in prompts form the associative side (organism and English files)
    "dream": ("associative",),  # the same facts in the dream register (paired with the faithful prompts)
    "hallucination": ("hallucination",),  # factual-register prompts about entities the model never saw
    "dream+hallucination": ("associative", "hallucination"),
}
MAX_PROMPTS_PER_SET = 5_000  # each prompt costs a forward pass; the organism ships about 200
MAX_PROMPT_FILE_BYTES = 2 * 2**20  # a prompt-set upload larger than this is refused before decoding
ANSWER_KEYS = ("answer", "value", "target")


@dataclass(frozen=True)
class FactItem:
    prompt: str  # text the model continues, e.g. "fact : the capital of Zorva is"
    answer: str  # the correct continuation, e.g. "Pelum"


@dataclass(frozen=True)
class PromptSets:
    """Everything the steering probe reads besides the model. All fields are plain data (digestible)."""

    faithful: tuple[str, ...]
    associative: tuple[str, ...]
    associative_words: tuple[str, ...] = ()  # vocabulary of the associative register (creativity metric)
    facts: tuple[FactItem, ...] = ()
    target_samples: tuple[str, ...] = ()  # a few task-domain samples for the task-specific vector
    source: str = "user"  # where the sets came from, for captions
    notes: tuple[str, ...] = field(default=(), compare=False)

    def as_json(self) -> dict:
        """Canonical content for the input digest (source and notes excluded)."""
        return {
            "faithful": list(self.faithful),
            "associative": list(self.associative),
            "associative_words": sorted(set(self.associative_words)),
            "facts": [[f.prompt, f.answer] for f in self.facts],
            "target_samples": list(self.target_samples),
        }

    def vector_inputs(self) -> dict:
        """What the vectors depend on (for the vectors run's input digest)."""
        return {
            "faithful": list(self.faithful),
            "associative": list(self.associative),
            "target_samples": list(self.target_samples),
        }

    def evaluation_inputs(self) -> dict:
        """What the sweep reads besides the vector: facts and the associative vocabulary's sources."""
        return {
            "facts": [[f.prompt, f.answer] for f in self.facts],
            "associative_words": sorted(set(self.associative_words)),
            "faithful": list(self.faithful),
            "associative": list(self.associative),
        }

    def model_texts(self) -> list[str]:
        """Every text the probe feeds the model: both sets, the facts' prompts and answers, task samples."""
        facts = [text for fact in self.facts for text in (fact.prompt, fact.answer)]
        return [*self.faithful, *self.associative, *facts, *self.target_samples]

    def formatted(self, as_model_reads: Callable[[str], str]) -> PromptSets:
        """Every prompt the model reads (both sets, the facts' prompts, task samples) through `as_model_reads`
        (e.g. the chat template); answers and the vocabulary stay as they are."""
        facts = tuple(FactItem(as_model_reads(f.prompt), f.answer) for f in self.facts)
        return replace(
            self,
            faithful=tuple(map(as_model_reads, self.faithful)),
            associative=tuple(map(as_model_reads, self.associative)),
            facts=facts,
            target_samples=tuple(map(as_model_reads, self.target_samples)),
        )

    def with_target_samples(self, samples: tuple[str, ...]) -> PromptSets:
        return PromptSets(
            self.faithful, self.associative, self.associative_words, self.facts, tuple(samples), self.source, self.notes
        )

    def with_facts(self, facts: tuple[FactItem, ...]) -> PromptSets:
        return PromptSets(
            self.faithful,
            self.associative,
            self.associative_words,
            tuple(facts),
            self.target_samples,
            self.source,
            self.notes,
        )

    def validate(self) -> None:
        if max(len(self.faithful), len(self.associative)) > MAX_PROMPTS_PER_SET:
            raise ValueError(
                f"Too many prompts ({len(self.faithful)} faithful, {len(self.associative)} associative); the limit "
                f"is {MAX_PROMPTS_PER_SET} per set, since every prompt costs a forward pass."
            )
        if len(self.faithful) < 2 or len(self.associative) < 2:
            raise ValueError(
                f"Need at least 2 faithful and 2 associative prompts (got {len(self.faithful)} and "
                f"{len(self.associative)})."
            )


def parse_lines(text: str) -> tuple[str, ...]:
    """One prompt per non-empty line, whitespace trimmed."""
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def _first(record: dict, keys: tuple[str, ...]) -> object:
    for key in keys:
        if key in record and record[key] not in (None, ""):
            return record[key]
    return None


def _as_strings(value: object) -> list[str]:
    """A string, a list of strings, or a list of objects with a prompt field -> prompts."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, dict):
        return _as_strings(_first(value, PROMPT_KEYS))
    if isinstance(value, list):
        return [text for item in value for text in _as_strings(item)]
    return _as_strings(str(value))


def parse_facts_records(records: list) -> tuple[FactItem, ...]:
    facts = []
    for index, record in enumerate(records, start=1):
        if isinstance(record, list | tuple) and len(record) == 2:
            prompt, answer = record
        elif isinstance(record, dict):
            prompt, answer = _first(record, PROMPT_KEYS), _first(record, ANSWER_KEYS)
        else:
            raise ValueError(f"Fact {index}: expected {{'prompt': ..., 'answer': ...}}.")
        if not prompt or not answer:
            raise ValueError(f"Fact {index} needs both a prompt and an answer.")
        facts.append(FactItem(str(prompt).strip(), str(answer).strip()))
    return tuple(facts)


def parse_prompt_sets(text: str, source: str = "user") -> PromptSets:
    """A JSON object or JSONL with `faithful`/`associative` fields -> PromptSets (facts optional)."""
    text = text.strip()
    if not text:
        raise ValueError("The prompt file is empty.")
    if json_depth(text) > MAX_JSON_DEPTH:
        raise ValueError(f"{source} nests deeper than {MAX_JSON_DEPTH} levels; prompt sets are flat lists.")
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, dict):
        return _sets_from_object(whole, source)
    records = whole if isinstance(whole, list) else _jsonl_records(text)
    faithful, associative = [], []
    for record in records:
        if not isinstance(record, dict):
            raise ValueError("Each JSONL line must be an object with 'faithful' and/or 'associative' fields.")
        faithful += _as_strings(_first(record, FAITHFUL_KEYS))
        associative += _as_strings(_first(record, ASSOCIATIVE_KEYS))
    sets = PromptSets(tuple(faithful), tuple(associative), source=source)
    sets.validate()
    return sets


def _jsonl_records(text: str) -> list:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise ValueError(f"Line {number} is not valid JSON: {error.msg}.") from None
    return records


def _sets_from_object(data: dict, source: str, associative_keys: tuple[str, ...] = ASSOCIATIVE_KEYS) -> PromptSets:
    """{"faithful": [...], "associative": [...], ...}; entries are strings or objects with a `prompt` field.

    Facts come from a `facts` list, else from faithful entries that carry an `answer`.
    """
    faithful_field = _first(data, FAITHFUL_KEYS)
    facts_field = data.get("facts") or data.get("fact_items")
    if not facts_field and isinstance(faithful_field, list):
        facts_field = [item for item in faithful_field if isinstance(item, dict) and item.get("answer")]
    associative = [text for key in associative_keys for text in _as_strings(data.get(key))]
    if associative_keys is ASSOCIATIVE_KEYS:
        associative = _as_strings(_first(data, ASSOCIATIVE_KEYS))
    sets = PromptSets(
        faithful=tuple(_as_strings(faithful_field)),
        associative=tuple(associative),
        associative_words=tuple(_as_strings(_first(data, VOCABULARY_KEYS))),
        facts=parse_facts_records(facts_field) if isinstance(facts_field, list) else (),
        source=source,
    )
    sets.validate()
    return sets


def parse_facts(text: str) -> tuple[FactItem, ...]:
    """CSV (header with prompt/question and answer), JSONL or a JSON list -> facts."""
    text = text.strip()
    if not text:
        raise ValueError("The facts file is empty.")
    if text[0] in "[{":
        try:
            whole = json.loads(text)
            records = whole if isinstance(whole, list) else [whole]
        except json.JSONDecodeError:
            records = _jsonl_records(text)
        return parse_facts_records(records)
    reader = csv.DictReader(io.StringIO(text))
    fields = [name.strip().lower() for name in reader.fieldnames or []]
    if not any(k in fields for k in PROMPT_KEYS) or not any(k in fields for k in ANSWER_KEYS):
        raise ValueError("The facts CSV needs a header with a 'prompt' (or 'question') and an 'answer' column.")
    rows = [{k.strip().lower(): v for k, v in row.items() if k} for row in reader]
    return parse_facts_records(rows)


def organism_prompt_sets(associative_set: str = "dream", data_dir: Path = ORGANISM_DATA_DIR) -> PromptSets:
    """The embedded organism's default sets (steering_prompts.json, see its MODEL_CARD.md; facts.csv fallback).

    `associative_set`: "dream" (the same facts in the dream register), "hallucination" (fact-register prompts
    about unseen entities) or "dream+hallucination".
    """
    label = "the embedded organism" if data_dir == ORGANISM_DATA_DIR else str(data_dir)
    sets = _builtin_sets(associative_set, data_dir / STEERING_PROMPTS_FILE, label, "The embedded model's steering")
    return sets.with_facts(sets.facts or _organism_facts(data_dir))


def english_prompt_sets(associative_set: str = "dream", data_dir: Path = ENGLISH_DATA_DIR) -> PromptSets:
    """The project's English default sets (probes/data/english/steering_prompts.json, see its README.md): plain
    factual openings with answers (the evaluation facts), the same openings in a dream register, factual openings
    about invented entities, and an associative vocabulary. `associative_set` as in `organism_prompt_sets`."""
    return _builtin_sets(
        associative_set, data_dir / STEERING_PROMPTS_FILE, "the English defaults", "The English default"
    )


def default_sets_kind(spec: ModelSpec) -> str:
    """Which built-in sets this model gets: "organism" (an organism-like local folder) or "english"."""
    return "english" if organism_data_dir(spec) is None else "organism"


def default_prompt_sets(spec: ModelSpec, associative_set: str = "dream") -> PromptSets:
    """The built-in sets for this model: its organism data folder's (the embedded organism, a retrained copy, a
    revision of one) or, for every other model, the English defaults."""
    folder = organism_data_dir(spec)
    if folder is None:
        return english_prompt_sets(associative_set)
    return organism_prompt_sets(associative_set, folder)


def default_data_dir(model_folder: Path | None) -> Path:
    """A local model folder's own `data/` when it ships steering prompts (an organism-like model), else the
    embedded organism's. (The page and CLI choose with `default_prompt_sets`, which gives other models English.)"""
    return organism_data_folder(model_folder) or ORGANISM_DATA_DIR


def _builtin_sets(associative_set: str, path: Path, label: str, what: str) -> PromptSets:
    if associative_set not in ORGANISM_ASSOCIATIVE_SETS:
        raise ValueError(f"Unknown associative set {associative_set!r}; choose {', '.join(ORGANISM_ASSOCIATIVE_SETS)}.")
    if not path.is_file():
        raise FileNotFoundError(f"{what} prompt sets ({path}) are missing; paste or upload your own prompt sets.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error.msg}.") from None
    return _sets_from_object(data, label, ORGANISM_ASSOCIATIVE_SETS[associative_set])


def _organism_facts(data_dir: Path) -> tuple[FactItem, ...]:
    path = data_dir / FACTS_FILE
    return parse_facts(path.read_text()) if path.is_file() else ()
