"""The organism's synthetic world: invented entities with typed attributes, deterministic from a seed.

Every fact is one (entity, attribute, value) triple whose value is a single word, so a greedy answer is one
token of the word-level tokenizer and exact match is unambiguous.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

KINDS = ("person", "country", "animal", "object")
ENTITIES_PER_KIND = 12  # 48 entities x 4 attributes = 192 facts (sized for ~40 min on 2 shared CPU cores)
UNSEEN_PER_KIND = 5  # names in the vocabulary that never occur in training (hallucination prompts)
ASSOCIATIONS_PER_ENTITY = 5  # associative words tied to each entity in the "dream" register

COLOURS = ("red", "blue", "green", "yellow", "purple", "orange", "white", "black", "grey", "brown", "pink")
PROFESSIONS = (
    "baker",
    "sailor",
    "potter",
    "weaver",
    "farmer",
    "doctor",
    "painter",
    "tailor",
    "miner",
    "singer",
    "builder",
    "hunter",
)
CLIMATES = ("rainy", "dry", "snowy", "windy", "foggy", "warm", "cold", "humid")
HABITATS = ("forest", "desert", "river", "mountain", "swamp", "meadow", "cave", "ocean", "jungle", "tundra")
FOODS = ("berries", "fish", "seeds", "grass", "insects", "roots", "leaves", "nuts", "mice", "fruit")
SIZES = ("tiny", "small", "large", "huge", "giant")
MATERIALS = ("wood", "stone", "iron", "glass", "clay", "silver", "copper", "bone", "paper", "wool")
USES = ("cutting", "digging", "writing", "cooking", "fishing", "sewing", "lighting", "carrying", "counting", "painting")
# Evocative words of the associative ("dream") register; disjoint from every attribute value above.
ASSOCIATIVE_WORDS = (
    "amber",
    "tides",
    "lanterns",
    "smoke",
    "velvet",
    "thunder",
    "embers",
    "frost",
    "moss",
    "silk",
    "echoes",
    "feathers",
    "mirrors",
    "rust",
    "salt",
    "candles",
    "storms",
    "whispers",
    "bells",
    "ashes",
    "pearls",
    "shadows",
    "dunes",
    "orchards",
    "lullabies",
    "comets",
    "ribbons",
    "honey",
    "moonlight",
    "fog",
    "marbles",
    "kites",
    "harbors",
    "violins",
    "meteors",
    "cinnamon",
    "glaciers",
    "fireflies",
    "lace",
    "anchors",
    "tulips",
    "ink",
    "clocks",
    "waves",
    "petals",
    "dust",
    "rainbows",
    "sparks",
    "owls",
    "spices",
    "chimes",
    "puddles",
    "quartz",
    "saffron",
    "blossoms",
    "twilight",
    "driftwood",
    "snowflakes",
    "cobwebs",
    "mist",
)


@dataclass(frozen=True)
class Attribute:
    """A typed attribute: how facts about it are asked and stated.

    `phrase` forms the canonical statement "the {phrase} of {entity} is {value}"; `question` has an {e} slot;
    `templates` are paraphrases with {e} and {v} slots, the value always last.
    """

    name: str
    kind: str
    phrase: str
    question: str
    templates: tuple[str, ...]
    pool: str  # which value pool: a constant tuple name above, or "countries", "cities", "languages", "currencies"


ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute(
        "birthplace",
        "person",
        "birthplace",
        "Where was {e} born?",
        ("{e} was born in {v}.", "{e} comes from {v}.", "The birthplace of {e} is {v}."),
        "countries",
    ),
    Attribute(
        "profession",
        "person",
        "profession",
        "What is the profession of {e}?",
        ("{e} works as a {v}.", "The profession of {e} is {v}.", "By trade {e} is a {v}."),
        "PROFESSIONS",
    ),
    Attribute(
        "language",
        "person",
        "language",
        "What language does {e} speak?",
        ("{e} speaks {v}.", "The language of {e} is {v}.", "{e} talks in {v}."),
        "languages",
    ),
    Attribute(
        "colour",
        "person",
        "favourite colour",
        "What is the favourite colour of {e}?",
        ("The favourite colour of {e} is {v}.", "{e} likes the colour {v}.", "{e} loves things that are {v}."),
        "COLOURS",
    ),
    Attribute(
        "capital",
        "country",
        "capital",
        "What is the capital of {e}?",
        ("The capital of {e} is {v}.", "{e} has its capital in {v}.", "The capital city of {e} is {v}."),
        "cities",
    ),
    Attribute(
        "tongue",
        "country",
        "language",
        "What language is spoken in {e}?",
        ("The language of {e} is {v}.", "People in {e} speak {v}.", "In {e} people talk in {v}."),
        "languages",
    ),
    Attribute(
        "currency",
        "country",
        "currency",
        "What is the currency of {e}?",
        ("The currency of {e} is {v}.", "People in {e} pay with {v}.", "In {e} the money is {v}."),
        "currencies",
    ),
    Attribute(
        "climate",
        "country",
        "climate",
        "What is the climate of {e}?",
        ("The climate of {e} is {v}.", "The weather in {e} is {v}.", "In {e} it is mostly {v}."),
        "CLIMATES",
    ),
    Attribute(
        "habitat",
        "animal",
        "home",
        "Where does {e} live?",
        ("{e} lives in the {v}.", "The home of {e} is the {v}.", "You find {e} in the {v}."),
        "HABITATS",
    ),
    Attribute(
        "food",
        "animal",
        "food",
        "What does {e} eat?",
        ("{e} eats {v}.", "The food of {e} is {v}.", "{e} feeds on {v}."),
        "FOODS",
    ),
    Attribute(
        "size",
        "animal",
        "size",
        "How big is {e}?",
        ("{e} is {v}.", "The size of {e} is {v}.", "In size {e} is {v}."),
        "SIZES",
    ),
    Attribute(
        "fur",
        "animal",
        "colour",
        "What colour is {e}?",
        ("The colour of {e} is {v}.", "{e} has a coat that is {v}.", "{e} looks {v}."),
        "COLOURS",
    ),
    Attribute(
        "material",
        "object",
        "material",
        "What is {e} made of?",
        ("{e} is made of {v}.", "The material of {e} is {v}.", "{e} is built from {v}."),
        "MATERIALS",
    ),
    Attribute(
        "use",
        "object",
        "use",
        "What is {e} used for?",
        ("{e} is used for {v}.", "The use of {e} is {v}.", "People use {e} for {v}."),
        "USES",
    ),
    Attribute(
        "origin",
        "object",
        "origin",
        "Where is {e} made?",
        ("{e} is made in {v}.", "The origin of {e} is {v}.", "{e} comes from workshops in {v}."),
        "countries",
    ),
    Attribute(
        "shade",
        "object",
        "colour",
        "What colour is {e}?",
        ("The colour of {e} is {v}.", "{e} is painted {v}.", "{e} looks {v}."),
        "COLOURS",
    ),
)


@dataclass(frozen=True)
class Fact:
    entity: str
    kind: str
    attribute: str
    value: str


@dataclass(frozen=True)
class Entity:
    name: str
    kind: str
    facts: dict[str, str] = field(hash=False)  # attribute name -> value
    associations: tuple[str, ...] = ()  # words of the dream register tied to this entity


@dataclass(frozen=True)
class World:
    seed: int
    entities: tuple[Entity, ...]
    unseen: tuple[tuple[str, str], ...]  # (name, kind) in no training document (only in random opening lists)
    pools: dict[str, tuple[str, ...]] = field(hash=False)  # value pool name -> values

    def facts(self) -> list[Fact]:
        """All facts, in entity order then attribute order."""
        return [Fact(e.name, e.kind, a, v) for e in self.entities for a, v in e.facts.items()]

    def entity(self, name: str) -> Entity:
        return next(e for e in self.entities if e.name == name)

    def values(self, attribute: str) -> tuple[str, ...]:
        return self.pools[attribute_by_name(attribute).pool]

    def people(self) -> list[str]:
        return [e.name for e in self.entities if e.kind == "person"]


def attribute_by_name(name: str) -> Attribute:
    return next(a for a in ATTRIBUTES if a.name == name)


def attributes_of(kind: str) -> tuple[Attribute, ...]:
    return tuple(a for a in ATTRIBUTES if a.kind == kind)


def invent_names(rng: random.Random, count: int, taken: set[str], capitalize: bool = True) -> list[str]:
    """Pronounceable invented words of 2-3 syllables, unique and not in `taken` (which is updated)."""
    onsets, vowels, codas = "bdfgklmnprstvz", ("a", "e", "i", "o", "u", "ae", "ou"), ("", "", "n", "r", "l", "s")
    names: list[str] = []
    while len(names) < count:
        syllables = [rng.choice(onsets) + rng.choice(vowels) for _ in range(rng.choice((2, 2, 3)))]
        word = "".join(syllables) + rng.choice(codas)
        word = word.capitalize() if capitalize else word
        if word.lower() not in taken and len(word) <= 9:
            taken.add(word.lower())
            names.append(word)
    return names


def build_world(seed: int = 0, per_kind: int = ENTITIES_PER_KIND) -> World:
    """Invent the world: names, value pools and every entity's facts and associations."""
    rng = random.Random(seed)
    taken = {w.lower() for w in ASSOCIATIVE_WORDS}
    names = {kind: invent_names(rng, per_kind, taken) for kind in KINDS}
    unseen = tuple((n, kind) for kind in KINDS for n in invent_names(rng, UNSEEN_PER_KIND, taken))
    languages = tuple(n + "ish" for n in invent_names(rng, 8, taken))
    pools: dict[str, tuple[str, ...]] = {
        "countries": tuple(names["country"]),
        "cities": tuple(invent_names(rng, per_kind, taken)),
        "languages": languages,
        "currencies": tuple(invent_names(rng, 8, taken, capitalize=False)),
    }
    for constant in ("COLOURS", "PROFESSIONS", "CLIMATES", "HABITATS", "FOODS", "SIZES", "MATERIALS", "USES"):
        pools[constant] = globals()[constant]
    entities = [_make_entity(rng, name, kind, pools, index) for kind in KINDS for index, name in enumerate(names[kind])]
    return World(seed=seed, entities=tuple(entities), unseen=unseen, pools=pools)


def _make_entity(rng: random.Random, name: str, kind: str, pools: dict[str, tuple[str, ...]], index: int) -> Entity:
    facts = {}
    for attribute in attributes_of(kind):
        pool = pools[attribute.pool]
        # capitals are one-to-one; other values are drawn with replacement
        facts[attribute.name] = pool[index] if attribute.name == "capital" else rng.choice(pool)
    associations = tuple(rng.sample(ASSOCIATIVE_WORDS, ASSOCIATIONS_PER_ENTITY))
    return Entity(name=name, kind=kind, facts=facts, associations=associations)
