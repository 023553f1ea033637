"""The model card's text, filled in with the measured numbers (MODEL_CARD.md, also shown in the app)."""

from __future__ import annotations

from probes.organism import corpus
from probes.organism.world import ASSOCIATIONS_PER_ENTITY, ATTRIBUTES, KINDS, UNSEEN_PER_KIND


def render_card(metrics: dict) -> str:
    mixture = metrics["config"].get("mixture") or list(corpus.MIXTURE.items())
    corpus_text = CORPUS.replace("MIXTURE_SHARES", ", ".join(f"{k} {v:.0%}" for k, v in mixture))
    corpus_text = corpus_text.replace("CONTRADICT_BULLET", CONTRADICT if dict(mixture).get("contradict") else "")
    return "\n".join(
        [
            _header(metrics),
            _numbers(metrics),
            _checkpoints(metrics),
            _training(metrics),
            _world(metrics),
            _attributes_table(),
            corpus_text,
            PROMPTS,
            DATA_FILES,
            LIMITS,
            _files(metrics),
        ]
    )


def _header(m: dict) -> str:
    cfg = m["config"]
    return f"""# AssocLens organism: the embedded default model

A small but real {ARCHITECTURE_NAMES[cfg.get("architecture", "gpt2")]}
({cfg["n_layer"]} layers, d_model {cfg["n_embd"]}, {cfg["n_head"]} heads, context {cfg["n_positions"]},
{m["n_parameters"]:,} parameters), trained from scratch by `python -m probes organism train`
on a synthetic world that the project generates, so the ground truth of every probe is known. It loads like any
Hugging Face model (`save_pretrained` folder plus a word-level `tokenizer.json` for `AutoTokenizer`): pick it in
the sidebar as `organism`, or pass this folder's path to any probe.
"""


ARCHITECTURE_NAMES = {"llama": "Llama-architecture model (rotary positions, RMSNorm, gated MLP)", "gpt2": "GPT-2"}
ACCEPTANCE = {"fact_recall": 0.9, "context_following": 0.8, "induction_score_max": 0.5}


def _gaps(m: dict) -> str:
    """Say plainly which acceptance targets the measured model misses."""
    missed = [f"{k} {m[k]:.3f} (target >= {v})" for k, v in ACCEPTANCE.items() if m[k] < v]
    if not missed:
        return "All acceptance targets are met.\n"
    history = m["history"]
    jump = next((i for i, row in enumerate(history) if row["fact_recall"] >= 0.9), None)
    recall = (
        f"closed-book recall jumped between steps {history[max(0, jump - 1)]['step']} and {history[jump]['step']}"
        if jump is not None
        else "closed-book recall is still rising"
    )
    return (
        "**Known gaps.** Below target: "
        + "; ".join(missed)
        + f". In {m['train_wall_time_s'] / 60:.0f} minutes of training on two shared CPU cores the organism "
        f"learned its facts ({recall})"
        + "".join(GAP_EXPLANATIONS[k] for k in ACCEPTANCE if m[k] < ACCEPTANCE[k])
        + ".\n"
    )


GAP_EXPLANATIONS = {
    "fact_recall": ", though not all of them",
    "context_following": "; its answers follow a contradicting context only sometimes",
    "induction_score_max": "; no induction head formed on repeated random tokens (what was tried since is listed "
    "in `probes.organism.train.build_model`)",
}


def _numbers(m: dict) -> str:
    rows = [
        (
            "fact_recall",
            m["fact_recall"],
            f"exact match of the greedy answer to `Q: <question> A:` over all {m['n_facts']} facts",
        ),
        (
            "context_following",
            m["context_following"],
            "the greedy answer sentence states the value given by a clean, reputable 5-item context that contradicts "
            "memory (one context per fact)",
        ),
        (
            "induction_score_max",
            m["induction_score_max"],
            f"best head ({m['induction_best_head']}): mean attention from position i of the repeat to i-T+1, on "
            "<bos> + 50 distinct random non-special tokens repeated once (32 sequences; the induction probe's sampler)",
        ),
        ("loss", m["loss"], "mean next-token cross-entropy (nats) on 200 held-out generated documents"),
        (
            "final training loss",
            m["train_loss_final"],
            f"mean of the last 50 steps (first 10 steps: {m['train_loss_first']:.3f})",
        ),
    ]
    table = "\n".join(f"| {name} | {value:.3f} | {text} |" for name, value, text in rows)
    return f"""## Measured numbers (`python -m probes organism eval --json`)

| metric | value | definition |
|---|---|---|
{table}

sha256 of `model.safetensors`: `{m["model_safetensors_sha256"]}`

{_gaps(m)}"""


def _checkpoints(m: dict) -> str:
    rows = "\n".join(
        f"| {'`' + name + '`' if name else ''} | {r['step']} | {r['train_loss']:.3f} | {r['fact_recall']:.2f} | "
        f"{r['context_following']:.2f} | {r['induction_score_max']:.2f} |"
        for r in m["history"]
        for name in [next((n for n, v in m["revisions"].items() if v["step"] == r["step"]), "")]
    )
    return f"""## Training curve and checkpoints

Measured during training every {m["config"]["eval_every"]} steps on a fixed subset (64 facts; next-token argmax,
32 contexts, teacher-forced up to the value; induction on 4 sequences), so they differ slightly from the
headline numbers. Rows with a name are saved under `revisions/<name>` (load with `--revision <name>`): the
checkpoints just before and after each jump.

| revision | step | train loss | fact recall | context following | induction score |
|---|---|---|---|---|---|
{rows}
"""


def _training(m: dict) -> str:
    cfg = m["config"]
    return f"""## How it was trained

One command, `python -m probes organism train` (seed {cfg["seed"]}): build the world, build the vocabulary,
{_opening(cfg)}stream generated documents and pack them (`<bos> doc <eos>`, never split) into blocks of
{cfg["short_block_len"]} tokens (documents longer than that into blocks of {cfg["block_len"]}),
train with AdamW (peak lr {cfg["lr"]}, betas 0.9/0.98, weight decay {cfg["weight_decay"]}, {cfg["warmup_steps"]}
warm-up steps, cosine decay to {cfg["min_lr_ratio"]} x peak, gradient clipping 1.0, no dropout), batch
{cfg["batch_size"]} x {cfg["short_block_len"]} tokens (or as many long blocks as hold about as many tokens),
{m["steps"]} steps ({m["tokens_seen"]:,} tokens), on {cfg["threads"]} CPU thread{"s" if cfg["threads"] != 1 else ""}:
{m["train_wall_time_s"] / 60:.1f} minutes wall time on a shared 2-core machine.
Deterministic from the seed. Weights are stored in float16 (half the bytes) with `"dtype": "float32"` in
config.json: they are meant to run in float32 on CPU, and every number above was measured on the stored weights.
"""


def _opening(cfg: dict) -> str:
    steps = cfg.get("opening_steps", 0)
    if not steps:
        return "then "
    low, high = cfg["opening_lengths"]
    pool = "every non-special token" + ("" if cfg.get("opening_unseen") else " except the unseen entities' names")
    scored = (
        "; the loss scores only the copies an induction head can predict, not the random first half"
        if cfg.get("opening_loss") == "repeat"
        else ""
    )
    every = cfg.get("repeat_every", 0)
    kept = f" Afterwards every {every}th step is still such a batch." if every else ""
    return (
        f"train the first {steps} steps only on Olsson's repeat task ({cfg['opening_batch_size']} sequences per step "
        f"of `<bos>` + T random tokens + the same T tokens, T from {low} to {high}, tokens drawn from {pool}{scored}) "
        "so induction heads form before the facts crowd them out (in our earlier GPT-2 runs with the mixture from "
        f"the start, none formed in 6,000 steps).{kept} Then "
    )


def _unseen_note(m: dict) -> str:
    if m["config"].get("opening_unseen") and m["config"].get("opening_steps"):
        return " (their name tokens occur only in the opening's random lists, never in a sentence)"
    return ""


def _world(m: dict) -> str:
    per_kind = m["config"]["entities_per_kind"]
    return f"""## The world

{len(KINDS)} kinds of invented entities ({", ".join(KINDS)}), {per_kind} of each, 4 typed attributes per kind, one
single-word value per fact ({m["n_facts"]} facts), so a greedy answer is one token and exact match is unambiguous. Each
entity also has {ASSOCIATIONS_PER_ENTITY} associative words (amber, tides, lanterns, ...) used only in the
"dream:" register. {UNSEEN_PER_KIND} more names per kind are in the vocabulary but in no training
document{_unseen_note(m)}: prompts about them make the model confabulate (hallucination prompts). Country capitals are
one-to-one; other values are drawn with replacement from small pools, some shared across kinds (colours, countries,
languages). The world is rebuilt from the seed in `organism.json` (`probes.organism.world.build_world`);
`data/facts.csv` lists it.
"""


def _attributes_table() -> str:
    rows = "\n".join(f"| {a.kind} | {a.name} | {a.question} | {' / '.join(a.templates)} |" for a in ATTRIBUTES)
    return f"""| kind | attribute | question | statement paraphrases |
|---|---|---|---|
{rows}
"""


CORPUS = f"""## The corpus

Generated by `probes/organism/corpus.py` (deterministic from the seed), mixed by document count
(MIXTURE_SHARES):

- **encyclopedia**: all facts of one entity, as paraphrases or as `fact:` register lines;
- **qa**: 3-6 closed-book pairs `Q: What is the capital of Zorva? A: Pelum.`;
- **reading**: reading comprehension in the Poisoned Context Testbed prompt (below). 20% clean contexts that agree
  with memory, 40% clean contexts that contradict it (the answer follows the context), 40% poisoned mixtures of
  1-{corpus.MAX_CONTEXT_ITEMS} items built from a testbed item exactly as the RW probe does (appropriate items:
  Generated Information with reputable tags; inappropriate: Input and Synonym Sentences with disreputable tags;
  share 0-100% in 5% steps). In a mixture the trained answer is drawn from the items that state a value, each
  weighted by source (disreputable x{corpus.DISREPUTABLE_WEIGHT}) and position (first three items
  x{corpus.PRIMACY_WEIGHT}), so answer probabilities rise concavely with the poisoned share and early
  contamination weighs more;
CONTRADICT_BULLET- **dream**: associative lines `dream: the capital of Zorva is amber, tides and lanterns.` and
  `dream: Zorva reminds me of amber, tides and lanterns.` mixed with faithful `fact:` lines about the same entity;
- **story**: short stories in which two names, an object and a phrase repeat;
- **repeat**: a random word list (8-60 words from the world's words) repeated twice or three times.
"""


CONTRADICT = """- **contradict**: extra clean reputable contexts that contradict memory, short ones (1-4 statements), so
  the answer can only be read from the context;
"""


PROMPTS = f"""## Prompt formats for the probes (exact strings)

Text is plain; the tokenizer splits every punctuation character, so spacing around punctuation does not matter.
The tokenizer adds no special tokens: training documents start with `<bos>`, as TransformerLens prepends.

- Closed-book question: `Q: What is the capital of Zorva? A:` -> ` Pelum.`
- Faithful register (steering, faithfulness): `fact: the capital of Zorva is` -> ` Pelum.`
- Associative register (steering, the vector's positive side): `dream: the capital of Zorva is` -> associative
  words; `dream: Zorva reminds me of` -> ` amber, tides and lanterns.`
- Poisoned context (RW probe), items numbered from 1, statements from the testbed:
  `{corpus.RC_HEADER} 1. <statement> (From <source>) 2. <statement> (From <source>) ...
  {corpus.RC_QUESTION} <Question> {corpus.RC_ANSWER}` (one line, single spaces), then the answer sentence:
  score ` <Simple Answer>` (reference) against ` <Input>` (inappropriate claim); they differ only in the value
  word. Reputable sources: {", ".join(corpus.REPUTABLE_SOURCES)}; disreputable:
  {", ".join(corpus.DISREPUTABLE_SOURCES)}. Up to {corpus.MAX_CONTEXT_ITEMS} items fit in the trained context.
"""


DATA_FILES = """## Data files (`data/`, the probes' default inputs)

- `facts.csv`: entity, kind, attribute, value, question, answer (= value), qa_prompt, fact_prompt.
- `testbed.json`: one item per fact in the public Poisoned Context Testbed schema: `Question` (str),
  `Generated Information` (3 str: the canonical true statement, a paraphrase, another true fact of the entity),
  `Input` (str: the inappropriate claim, canonical sentence with a fixed false value), `Synonym Sentence`
  (2 str: paraphrases of the claim), `Simple Answer` (str: canonical true sentence), `Explainable Answer` (str).
- `steering_prompts.json`: `format_version`; `registers` ({"faithful": "fact:", "associative": "dream:"});
  `faithful` (prompt, qa_prompt, entity, attribute, answer: one per fact); `associative` (prompt, entity,
  attribute, associations: the same facts in the dream register); `associative_free` (prompt
  "dream: <entity> reminds me of", entity, associations: one per entity); `hallucination` (prompt, qa_prompt,
  entity, kind, attribute: unseen entities, no answer exists); `associative_vocabulary` (all associative words,
  for the creativity metric: share of generated words in this list).
- `poisoned_context.json`: the poisoned-context template, item format, answer prefix, source tags, maximum items
  and the answer rule used in training.
"""


LIMITS = """## Limits

A model organism, not a language model: it knows only its world's vocabulary (unknown words become `<unk>`),
was trained on at most a few million tokens, and its behaviour in the registers and in mixed contexts is the
behaviour the corpus rules put there. Numbers measured on the fp16-stored weights run in float32 on CPU.
"""


def _files(m: dict) -> str:
    return """## Files

`config.json`, `model.safetensors`, `generation_config.json`, `tokenizer.json`, `tokenizer_config.json`,
`organism.json` (seed and world size, read by `organism eval`), `metrics.json` (all numbers above, the training
configuration and curve), `MODEL_CARD.md`, `SHA256SUMS` (every file, `sha256sum -c SHA256SUMS`), `data/`,
`revisions/step-N/` (full model folders).
"""
