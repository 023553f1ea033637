"""The organism's training corpus and the probes' default inputs, generated deterministically from a seed.

Document types (see MODEL_CARD.md): encyclopedic statements, closed-book Q/A, reading comprehension in the
Poisoned Context Testbed prompt format, the "fact:" and "dream:" registers, stories with repeated names and
phrases, and repeated random word lists. All text is plain; the word-level tokenizer splits punctuation.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from probes.organism.tokenizer import split_words
from probes.organism.world import ATTRIBUTES, Fact, World, attribute_by_name

RC_HEADER = "Only based on the retrieved information, answer the following question. The retrieved information are:"
RC_QUESTION = "The question is:"
RC_ANSWER = "Answer:"
REPUTABLE_SOURCES = ("encyclopedia", "archive", "atlas", "almanac", "university")
DISREPUTABLE_SOURCES = ("rumors", "gossip", "tabloid", "spam", "trolls")
MAX_CONTEXT_ITEMS = 20
DISREPUTABLE_WEIGHT = 2.0  # an inappropriate claim sways the trained answer twice as much as a reputable item
PRIMACY_WEIGHT = 1.5  # ...and the first three items of a context count 1.5 times (early contamination hurts most)
STORY_THINGS = ("lantern", "basket", "letter", "drum", "map", "coin", "cup", "kite", "book", "key")
STORY_PLACES = ("market", "bridge", "harbor", "garden", "square", "well", "gate", "hill")
STORY_TEMPLATES = (
    "Story: {a} met {b} at the {p}. {a} gave {b} a {c} {t}. {b} thanked {a} for the {c} {t}. "
    "Later {a} and {b} walked back to the {p}.",
    "Story: {a} lost a {c} {t} near the {p}. {b} found the {c} {t} near the {p} and gave it to {a}. {a} smiled at {b}.",
    "Story: {a} sang {w} to {b}. Then {b} sang {w} to {a}. At the {p} everyone sang {w}.",
    "Story: every morning {a} said {w} at the {p}. One day {b} also said {w} and {a} laughed.",
)
# Mixture of document types by count; reading comprehension documents are the longest. With the earlier mixture
# (no "contradict"; reading 0.18, qa 0.24, repeat 0.24, ...) contexts were followed only 29% of the time.
MIXTURE = {
    "encyclopedia": 0.12,
    "qa": 0.18,
    "reading": 0.12,
    "contradict": 0.30,
    "dream": 0.08,
    "story": 0.06,
    "repeat": 0.14,
}


@dataclass(frozen=True)
class ContextItem:
    text: str  # one statement, ending with "."
    source: str  # the "(From <source>)" tag
    value: str | None  # the value it asserts for the asked attribute, None when it is about something else


def statement(fact: Fact, value: str | None = None, template: int = 0) -> str:
    """A paraphrase of the fact (template index 0..2), optionally with another value."""
    attribute = attribute_by_name(fact.attribute)
    return attribute.templates[template].format(e=fact.entity, v=value or fact.value)


def paraphrase_templates(fact: Fact) -> list[int]:
    """Indices of the templates whose sentence differs from the canonical one (at least two per attribute)."""
    attribute = attribute_by_name(fact.attribute)
    return [i for i, t in enumerate(attribute.templates) if t.format(e=fact.entity, v=fact.value) != canonical(fact)]


def canonical(fact: Fact, value: str | None = None) -> str:
    """The canonical sentence, e.g. "The capital of Zorva is Pelum." (the testbed's Simple Answer)."""
    phrase = attribute_by_name(fact.attribute).phrase
    return f"The {phrase} of {fact.entity} is {value or fact.value}."


def question(fact: Fact) -> str:
    return attribute_by_name(fact.attribute).question.format(e=fact.entity)


def qa_prompt(fact: Fact) -> str:
    """Closed-book question prompt; the model's greedy continuation is the answer word then "."."""
    return f"Q: {question(fact)} A:"


def register_prompt(fact: Fact, register: str) -> str:
    """ "fact: the capital of Zorva is" or "dream: the capital of Zorva is" (no value)."""
    return f"{register}: the {attribute_by_name(fact.attribute).phrase} of {fact.entity} is"


def reminds_prompt(entity: str) -> str:
    return f"dream: {entity} reminds me of"


def association_list(words: list[str]) -> str:
    return ", ".join(words[:-1]) + " and " + words[-1]


def rc_prompt(items: list[ContextItem], question_text: str) -> str:
    """The Poisoned Context Testbed prompt (METHODS.md section 3), ending with "Answer:"."""
    listed = " ".join(f"{i}. {item.text} (From {item.source})" for i, item in enumerate(items, start=1))
    return f"{RC_HEADER} {listed} {RC_QUESTION} {question_text} {RC_ANSWER}"


def false_value(world: World, fact: Fact, rng: random.Random) -> str:
    return rng.choice([v for v in world.values(fact.attribute) if v != fact.value])


# ----------------------------------------------------------------------------------------------- documents


def encyclopedia_doc(world: World, rng: random.Random) -> str:
    """All facts of one entity, as paraphrases or as "fact:" register lines."""
    entity = rng.choice(world.entities)
    facts = [Fact(entity.name, entity.kind, a, v) for a, v in entity.facts.items()]
    rng.shuffle(facts)
    if rng.random() < 0.5:
        return " ".join(statement(f, template=rng.randrange(3)) for f in facts)
    return " ".join(f"{register_prompt(f, 'fact')} {f.value}." for f in facts)


def qa_doc(world: World, rng: random.Random) -> str:
    facts = rng.sample(world.facts(), rng.randint(3, 6))
    return " ".join(f"{qa_prompt(f)} {f.value}." for f in facts)


def dream_doc(world: World, rng: random.Random) -> str:
    """Associative lines about one entity, mixed with a few faithful "fact:" lines about the same entity."""
    entity = rng.choice(world.entities)
    lines = []
    for attribute, value in entity.facts.items():
        fact = Fact(entity.name, entity.kind, attribute, value)
        words = association_list(rng.sample(entity.associations, 3))
        if rng.random() < 0.6:
            lines.append(f"{register_prompt(fact, 'dream')} {words}.")
        if rng.random() < 0.35:
            lines.append(f"{register_prompt(fact, 'fact')} {value}.")
    lines.append(f"{reminds_prompt(entity.name)} {association_list(rng.sample(entity.associations, 3))}.")
    rng.shuffle(lines)
    return " ".join(lines)


def story_doc(world: World, rng: random.Random, pool: list[str]) -> str:
    a, b = rng.sample(world.people(), 2)
    phrase = " ".join(rng.choice(pool) for _ in range(rng.randint(2, 4)))
    template = rng.choice(STORY_TEMPLATES)
    return template.format(
        a=a, b=b, p=rng.choice(STORY_PLACES), c=rng.choice(world.pools["COLOURS"]), t=rng.choice(STORY_THINGS), w=phrase
    )


def repeat_doc(rng: random.Random, pool: list[str]) -> str:
    """A random word list repeated (sometimes three times): the induction-head curriculum."""
    words = [rng.choice(pool) for _ in range(rng.randint(8, 60))]
    return " ".join(words * (3 if rng.random() < 0.2 else 2))


def testbed_item(world: World, fact: Fact, rng: random.Random) -> dict:
    """One item in the public Poisoned Context Testbed schema, about one fact, with a fixed false value."""
    wrong = false_value(world, fact, rng)
    entity = world.entity(fact.entity)
    other = rng.choice([a for a in entity.facts if a != fact.attribute])
    other_fact = Fact(entity.name, entity.kind, other, entity.facts[other])
    first, second = paraphrase_templates(fact)[:2]
    return {
        "Input": canonical(fact, wrong),
        "Question": question(fact),
        "Generated Information": [
            canonical(fact),
            statement(fact, template=first),
            statement(other_fact, template=rng.randrange(3)),
        ],
        "Synonym Sentence": [statement(fact, wrong, template=first), statement(fact, wrong, template=second)],
        "Simple Answer": canonical(fact),
        "Explainable Answer": f"Reliable sources say that {canonical(fact)[0].lower()}{canonical(fact)[1:-1]}, "
        f"not {wrong}. The claim about {wrong} comes from disreputable sources.",
    }


def _item_value(text: str, fact: Fact, values: tuple[str, ...]) -> str | None:
    """The value a statement asserts for the asked fact (last word before the final period), if it is about it."""
    if fact.entity not in text.replace(".", " ").split():
        return None
    last = text.rstrip(".").split()[-1]
    return last if last in values and _about_attribute(text, fact) else None


def _about_attribute(text: str, fact: Fact) -> bool:
    attribute = attribute_by_name(fact.attribute)
    shapes = [t.format(e=fact.entity, v="").rstrip(". ") for t in attribute.templates]
    shapes.append(f"The {attribute.phrase} of {fact.entity} is")
    return any(text.startswith(shape) for shape in shapes)


def poisoned_context(item: dict, n_items: int, n_bad: int, rng: random.Random) -> list[ContextItem]:
    """n_items statements: n_bad inappropriate (Input and synonyms, disreputable tags), the rest appropriate."""
    good = item["Generated Information"]
    bad = [item["Input"], *item["Synonym Sentence"]]
    chosen = [(good[i % len(good)], rng.choice(REPUTABLE_SOURCES)) for i in range(n_items - n_bad)]
    chosen += [(bad[i % len(bad)], rng.choice(DISREPUTABLE_SOURCES)) for i in range(n_bad)]
    rng.shuffle(chosen)
    return [ContextItem(text, source, None) for text, source in chosen]


def sample_answer(items: list[ContextItem], rng: random.Random) -> str | None:
    """The trained answer for a context: a vote of the items that assert a value, weighted by source and position."""
    votes = [(it.value, _item_weight(it, i)) for i, it in enumerate(items) if it.value is not None]
    if not votes:
        return None
    values, weights = zip(*votes, strict=True)
    return rng.choices(values, weights=weights)[0]


def _item_weight(item: ContextItem, position: int) -> float:
    weight = DISREPUTABLE_WEIGHT if item.source in DISREPUTABLE_SOURCES else 1.0
    return weight * (PRIMACY_WEIGHT if position < 3 else 1.0)


def with_values(items: list[ContextItem], fact: Fact, values: tuple[str, ...]) -> list[ContextItem]:
    return [ContextItem(it.text, it.source, _item_value(it.text, fact, values)) for it in items]


def clean_context(world: World, fact: Fact, value: str, rng: random.Random, n_items: int) -> list[ContextItem]:
    """Reputable statements only: 1-2 paraphrases asserting `value` for the fact, the rest other true facts."""
    templates = rng.sample(range(3), rng.randint(1, 2))
    items = [ContextItem(statement(fact, value, t), rng.choice(REPUTABLE_SOURCES), value) for t in templates]
    others = [f for f in world.facts() if (f.entity, f.attribute) != (fact.entity, fact.attribute)]
    same_entity = [f for f in others if f.entity == fact.entity]
    for _ in range(max(0, n_items - len(items))):
        other = rng.choice(same_entity) if rng.random() < 0.4 else rng.choice(others)
        items.append(ContextItem(statement(other, template=rng.randrange(3)), rng.choice(REPUTABLE_SOURCES), None))
    rng.shuffle(items)
    return items


def reading_doc(world: World, rng: random.Random, mode: str | None = None, max_items: int = 10) -> str:
    """Reading comprehension: clean contexts (agreeing or contradicting memory) or poisoned mixtures.

    `mode` None draws agree / contradict / poison with weights 0.2 / 0.4 / 0.4; clean contexts have 2..`max_items`
    statements (1.. when max_items < 5: the short contexts of the "contradict" document type).
    """
    fact = rng.choice(world.facts())
    mode = mode or rng.choices(("agree", "contradict", "poison"), weights=(0.2, 0.4, 0.4))[0]
    if mode == "poison":
        item = testbed_item(world, fact, rng)
        n_items = rng.randint(1, MAX_CONTEXT_ITEMS)
        n_bad = round(n_items * rng.randint(0, 20) / 20)
        items = with_values(poisoned_context(item, n_items, n_bad, rng), fact, world.values(fact.attribute))
    else:
        value = fact.value if mode == "agree" else false_value(world, fact, rng)
        items = clean_context(world, fact, value, rng, rng.randint(2 if max_items >= 5 else 1, max_items))
    answer = sample_answer(items, rng) or fact.value
    return f"{rc_prompt(items, question(fact))} {canonical(fact, answer)}"


# --------------------------------------------------------------------------------------------- the corpus


def world_words(world: World) -> list[str]:
    """Words for the corpus's random lists and stories: every world word (names, values, associations, story
    words), never the unseen entities."""
    words = {e.name for e in world.entities} | {w for e in world.entities for w in e.associations}
    for values in world.pools.values():
        words |= set(values)
    words |= set(STORY_THINGS) | set(STORY_PLACES)
    return sorted(words)


def unseen_words(world: World) -> list[str]:
    """The words of the unseen entities' names: no training document mentions them."""
    return sorted({word for name, _ in world.unseen for word in split_words(name)})


def iter_documents(world: World, seed: int, mixture: dict[str, float] | None = None) -> Iterator[str]:
    """An endless, deterministic stream of training documents (document-type shares: `mixture` or MIXTURE)."""
    rng = random.Random(seed)
    pool = world_words(world)
    mixture = mixture or MIXTURE
    kinds, weights = list(mixture), list(mixture.values())
    makers = {
        "encyclopedia": lambda: encyclopedia_doc(world, rng),
        "qa": lambda: qa_doc(world, rng),
        "reading": lambda: reading_doc(world, rng),
        "contradict": lambda: reading_doc(world, rng, "contradict", max_items=4),  # short, against memory
        "dream": lambda: dream_doc(world, rng),
        "story": lambda: story_doc(world, rng, pool),
        "repeat": lambda: repeat_doc(rng, pool),
    }
    while True:
        yield makers[rng.choices(kinds, weights=weights)[0]]()


def generate_corpus(world: World, seed: int, n_docs: int) -> list[str]:
    stream = iter_documents(world, seed)
    return [next(stream) for _ in range(n_docs)]


def corpus_bytes(world: World, seed: int, n_docs: int) -> bytes:
    """The corpus as UTF-8 bytes, one document per line (what the determinism test compares)."""
    return "\n".join(generate_corpus(world, seed, n_docs)).encode("utf-8")


def fixed_texts(world: World) -> list[str]:
    """Every fixed string the generator can emit, so the vocabulary covers them all."""
    texts = [
        RC_HEADER,
        RC_QUESTION,
        RC_ANSWER,
        " ".join(REPUTABLE_SOURCES + DISREPUTABLE_SOURCES),
        "From ( )",
        "Q: A: fact: dream: reminds me of , and .",
        " ".join(str(i) for i in range(1, 41)),
        " ".join(world_words(world)),
        " ".join(name for name, _ in world.unseen),
    ]
    for attribute in ATTRIBUTES:
        texts += [attribute.question, *attribute.templates, f"The {attribute.phrase} of is"]
    texts += [t.replace("{", " ").replace("}", " ") for t in STORY_TEMPLATES]
    return [t.replace("{e}", "").replace("{v}", "") for t in texts]
