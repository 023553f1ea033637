"""The probes' default inputs, written next to the weights in `data/`.

- facts.csv: every fact (entity, kind, attribute, value, question, answer, qa_prompt, fact_prompt).
- testbed.json: the organism's Poisoned Context Testbed, one item per fact, in the public schema.
- steering_prompts.json: faithful / associative / hallucination prompts and the associative vocabulary.
- poisoned_context.json: the prompt template and source tags the organism was trained with.
"""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

from probes.organism import corpus
from probes.organism.corpus import canonical, qa_prompt, question, register_prompt, reminds_prompt
from probes.organism.world import ASSOCIATIVE_WORDS, World, attributes_of

TESTBED_SEED_OFFSET = 101  # the testbed's false values come from random.Random(seed + offset)
FACT_COLUMNS = ("entity", "kind", "attribute", "value", "question", "answer", "qa_prompt", "fact_prompt")


def facts_rows(world: World) -> list[dict[str, str]]:
    return [
        {
            "entity": f.entity,
            "kind": f.kind,
            "attribute": f.attribute,
            "value": f.value,
            "question": question(f),
            "answer": f.value,
            "qa_prompt": qa_prompt(f),
            "fact_prompt": register_prompt(f, "fact"),
        }
        for f in world.facts()
    ]


def facts_csv(world: World) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FACT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(facts_rows(world))
    return buffer.getvalue()


def testbed(world: World) -> list[dict]:
    rng = random.Random(world.seed + TESTBED_SEED_OFFSET)
    return [corpus.testbed_item(world, fact, rng) for fact in world.facts()]


def steering_prompts(world: World) -> dict:
    """Prompt sets for the FlexAC steering probe (fields documented in MODEL_CARD.md)."""
    faithful, associative = [], []
    for fact in world.facts():
        entity = world.entity(fact.entity)
        faithful.append(
            {
                "prompt": register_prompt(fact, "fact"),
                "qa_prompt": qa_prompt(fact),
                "entity": fact.entity,
                "attribute": fact.attribute,
                "answer": fact.value,
            }
        )
        associative.append(
            {
                "prompt": register_prompt(fact, "dream"),
                "entity": fact.entity,
                "attribute": fact.attribute,
                "associations": list(entity.associations),
            }
        )
    reminds = [
        {"prompt": reminds_prompt(e.name), "entity": e.name, "associations": list(e.associations)}
        for e in world.entities
    ]
    hallucination = []
    for name, kind in world.unseen:
        for attribute in attributes_of(kind):
            phrase = attribute.phrase
            hallucination.append(
                {
                    "prompt": f"fact: the {phrase} of {name} is",
                    "entity": name,
                    "kind": kind,
                    "attribute": attribute.name,
                    "qa_prompt": f"Q: {attribute.question.format(e=name)} A:",
                }
            )
    return {
        "format_version": 1,
        "registers": {"faithful": "fact:", "associative": "dream:"},
        "faithful": faithful,
        "associative": associative,
        "associative_free": reminds,
        "hallucination": hallucination,
        "associative_vocabulary": list(ASSOCIATIVE_WORDS),
    }


def poisoned_context_spec() -> dict:
    return {
        "template": corpus.RC_HEADER
        + " 1. {statement} (From {source}) 2. ... "
        + corpus.RC_QUESTION
        + " {Question} "
        + corpus.RC_ANSWER,
        "header": corpus.RC_HEADER,
        "item": "{index}. {statement} (From {source})",
        "question": corpus.RC_QUESTION + " {Question}",
        "answer_prefix": corpus.RC_ANSWER,
        "answer_format": "the Simple Answer sentence (reference) or the Input sentence (inappropriate claim)",
        "reputable_sources": list(corpus.REPUTABLE_SOURCES),
        "disreputable_sources": list(corpus.DISREPUTABLE_SOURCES),
        "max_items": corpus.MAX_CONTEXT_ITEMS,
        "trained_answer_rule": {
            "disreputable_weight": corpus.DISREPUTABLE_WEIGHT,
            "primacy_weight_first_3_items": corpus.PRIMACY_WEIGHT,
        },
    }


def all_texts(world: World) -> list[str]:
    """Every string in the data files (for the vocabulary)."""
    texts = [facts_csv(world), json.dumps(poisoned_context_spec())]
    for item in testbed(world):
        texts += [v if isinstance(v, str) else " ".join(v) for v in item.values()]
    prompts = steering_prompts(world)
    for key in ("faithful", "associative", "associative_free", "hallucination"):
        texts += [" ".join(str(v) for v in row.values()) for row in prompts[key]]
    return texts


def write_all(world: World, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "facts.csv").write_text(facts_csv(world))
    (folder / "testbed.json").write_text(json.dumps(testbed(world), indent=1, ensure_ascii=False) + "\n")
    (folder / "steering_prompts.json").write_text(json.dumps(steering_prompts(world), indent=1) + "\n")
    (folder / "poisoned_context.json").write_text(json.dumps(poisoned_context_spec(), indent=1) + "\n")


__all__ = ["canonical", "facts_csv", "steering_prompts", "testbed", "write_all"]
