"""Associative steering (FlexAC): build the direction, slide the strength, see generations shift."""

from __future__ import annotations

import streamlit as st

from cache import digest_json
from pages.common import (
    about_box,
    cached_run,
    chat_template_select,
    current_spec,
    export_buttons,
    get_model,
    paper_header,
    prompt_caption,
    run_caption,
    show_error,
)
from probes import steering
from probes.figures import steering as figures
from probes.models import ModelLoadError
from probes.steering import prompts
from probes.steering.metrics import derived_vocabulary
from probes.steering.sweep import input_coverage
from probes.steering.vectors import STRENGTH_UNITS
from probes.uploads import decode_upload
from probes.wiring import LadderInputs, SweepInputs, result_of

DEFAULTS, PASTE = "Built-in defaults", "Paste or upload"  # option values; the defaults' label names which
SLIDER_MIN, SLIDER_MAX, SLIDER_STEP = -4.0, 4.0, 0.5
DEFAULT_SWEEP = ",".join(f"{s:g}" for s in steering.SweepConfig.strengths)  # the CLI's default too

st.title("Associative steering (FlexAC)")
about_box(*figures.ABOUT)

try:
    model = get_model(current_spec())
except (ModelLoadError, ValueError, MemoryError) as error:
    show_error(error)
    st.stop()
n_layers = model.cfg.n_layers


references = paper_header("steering", n_layers)


def defaults_label(kind: str, associative_set: str) -> str:
    """The built-in option's label: which defaults this model gets and their counts."""
    try:
        sets = prompts.default_prompt_sets(current_spec(), associative_set)
    except (FileNotFoundError, ValueError):
        return figures.KIND_NAMES[kind]  # the error shows below once the option is chosen
    return f"{figures.KIND_NAMES[kind]}: {len(sets.faithful)} faithful / {len(sets.associative)} associative prompts"


def prompt_sets_widget() -> steering.PromptSets | None:
    """The two prompt sets (plus vocabulary and facts): the built-in defaults for this model (the organism's for an
    organism-like model, English for every other), or the user's own."""
    kind = prompts.default_sets_kind(current_spec())
    chosen = st.session_state.get("steering_associative_set")
    label = defaults_label(kind, chosen if chosen in prompts.ORGANISM_ASSOCIATIVE_SETS else "dream")
    source = st.radio(
        "Prompt sets",
        [DEFAULTS, PASTE],
        format_func=lambda option: label if option == DEFAULTS else option,
        horizontal=True,
        key="steering_sets_source",
    )
    try:
        if source == DEFAULTS:
            associative_set = st.selectbox(
                "Associative side",
                list(prompts.ORGANISM_ASSOCIATIVE_SETS),
                format_func=figures.ASSOCIATIVE_SET_LABELS[kind].get,
                key="steering_associative_set",
            )
            sets = prompts.default_prompt_sets(current_spec(), associative_set)
            st.caption(figures.sets_caption(sets))
            with st.expander("See examples of both sets"):
                left, right = st.columns(2)
                left.markdown("**Faithful**\n\n" + "\n".join(f"- `{p}`" for p in sets.faithful[:5]))
                right.markdown("**Associative**\n\n" + "\n".join(f"- `{p}`" for p in sets.associative[:5]))
            return sets
        return pasted_sets()
    except (FileNotFoundError, ValueError) as error:
        show_error(error)
        return None


def pasted_sets() -> steering.PromptSets | None:
    upload = st.file_uploader(
        "Prompt sets file: JSON or JSONL with `faithful` / `associative` fields",
        type=["json", "jsonl"],
        key="steering_sets_upload",
    )
    left, right = st.columns(2)
    faithful = left.text_area("Faithful prompts (one per line)", height=140, key="steering_faithful")
    associative = right.text_area("Associative prompts (one per line)", height=140, key="steering_associative")
    words = st.text_input("Associative vocabulary (optional, comma-separated)", key="steering_vocabulary")
    facts_text = st.text_area(
        "Evaluation facts for faithfulness (CSV with a `prompt,answer` header, or JSONL)", key="steering_facts"
    )
    if upload is not None:
        text = decode_upload(upload.getvalue(), upload.name, prompts.MAX_PROMPT_FILE_BYTES)
        sets = prompts.parse_prompt_sets(text, source=upload.name)
    elif faithful.strip() or associative.strip():
        sets = steering.PromptSets(prompts.parse_lines(faithful), prompts.parse_lines(associative), source="pasted")
        sets.validate()
    else:
        st.info("Paste at least two prompts into each set, or upload a file.")
        return None
    vocabulary = tuple(w.strip() for w in words.split(",") if w.strip()) or sets.associative_words
    facts = prompts.parse_facts(facts_text) if facts_text.strip() else sets.facts
    return steering.PromptSets(sets.faithful, sets.associative, vocabulary, facts, (), sets.source)


def uploaded_vectors() -> steering.SteeringVectors | None:
    files = st.file_uploader(
        "Load a saved vector (vector.safetensors, optionally with its vector.json)",
        type=["safetensors", "json"],
        accept_multiple_files=True,
        key="steering_vector_upload",
    )
    tensors = [f for f in files or [] if f.name.endswith(".safetensors")]
    sidecars = [f for f in files or [] if f.name.endswith(".json")]
    if not tensors:
        return None
    try:
        vectors = steering.SteeringVectors.from_files(
            tensors[0].getvalue(), sidecars[0].getvalue() if sidecars else None
        )
        vectors.check_model(model)
    except ValueError as error:
        show_error(error)
        return None
    st.success(f"Using the uploaded vector {tensors[0].name} (layers {list(vectors.layers)}).")
    return vectors


# ------------------------------------------------------------------------------------------- 1. direction

st.header("1 · Build the direction")
sets = prompt_sets_widget()
if sets is None:
    st.stop()
left, middle, right, unit_column = st.columns(4)
layers = left.multiselect(
    "Steering layers", list(range(n_layers)), default=list(steering.default_layers(n_layers)), key="steering_layers"
)
n_pairs = middle.number_input(
    "Top-N pairs (0 = all)",
    min_value=0,
    max_value=1_000_000,
    value=0,
    key="steering_pairs",
    help="FlexAC's release keeps the 50 most distant pairs; on the organism all pairs give a cleaner direction.",
)
pairing = right.selectbox(
    "Pairing",
    ["crosswise", "matched"],
    key="steering_pairing",
    help="crosswise: every faithful with every associative prompt (FlexAC); matched: the i-th with the i-th "
    "(aligned sets: the same content in both registers).",
)
chat_template = chat_template_select(right, "steering_chat_template")
targets = prompts.parse_lines(
    st.text_area("Task samples for a task-specific vector (optional, one per line)", height=80, key="steering_targets")
)
loaded = uploaded_vectors()
if not layers:
    st.warning("Choose at least one steering layer.")
    st.stop()
sets = sets.with_target_samples(targets)
unit = unit_column.selectbox(
    "Strength unit",
    list(STRENGTH_UNITS),
    format_func=figures.UNIT_LABELS.get,
    key="steering_unit",
    help=figures.UNIT_HELP,
)
relative_norm = steering.VectorConfig.relative_norm
if unit == "residual":
    relative_norm = unit_column.number_input(
        "× mean residual norm", 0.01, 10.0, steering.VectorConfig.relative_norm, 0.05, key="steering_relative_norm"
    )
vector_cfg = steering.VectorConfig(
    layers=tuple(layers),
    top_n_pairs=int(n_pairs),
    pairing=pairing,
    unit=unit,
    relative_norm=relative_norm,
    chat_template=chat_template,
).resolved(n_layers)
for warning in input_coverage(model.tokenizer, sets).warnings("the prompt sets' text"):
    st.warning(warning, icon="⚠️")
vector_run = None
if loaded is None:
    vector_run = cached_run(steering.VECTORS_NAME, vector_cfg, sets, label="Building the steering vector")
    if vector_run is None:
        st.stop()
    built = result_of(vector_run)
    vectors = built.vectors
    st.plotly_chart(figures.per_layer_figure(built.per_layer, layers), width="stretch", key="steering_layers_fig")
    st.caption(figures.unit_caption(vectors.metadata))
    prompt_caption(vectors.metadata.get("prompt_format", "plain"), vectors.metadata.get("example_prompt", ""))
    run_caption(vector_run)
else:
    vectors = steering.SteeringVectors(loaded.general, tuple(sorted(layers)), loaded.task, loaded.metadata)
left, right, _ = st.columns(3)
left.download_button("Download vector (.safetensors)", vectors.to_safetensors(), file_name="vector.safetensors",
                     mime="application/octet-stream", key="steering_download_tensors")  # fmt: skip
right.download_button("Download metadata (.json)", vectors.to_json_bytes(), file_name="vector.json",
                      mime="application/json", key="steering_download_json")  # fmt: skip
if vector_run is not None:
    export_buttons(vector_run, key_prefix="steering-vectors")

vocabulary = frozenset(w.lower() for w in sets.associative_words) or derived_vocabulary(sets.faithful, sets.associative)

# ------------------------------------------------------------------------------------------- 2. steer

st.header("2 · Steer a prompt")
default_prompt = sets.facts[0].prompt if sets.facts else sets.faithful[0]
# keyed by the default, so a new prompt set brings its own default prompt instead of keeping the old one
prompt = st.text_input("Prompt", value=default_prompt, key=f"steering_prompt_{digest_json(default_prompt)[:8]}")
strength = st.slider(
    "Associative strength",
    SLIDER_MIN,
    SLIDER_MAX,
    value=2.0,
    step=SLIDER_STEP,
    key="steering_strength",
    help="Multiple of the steering vector: negative = more faithful, positive = more associative.",
)
controls = st.columns(4 if vectors.task is not None else 3)
task_strength = 0.0
if vectors.task is not None:
    task_strength = controls[-4].slider("Task vector strength", -4.0, 4.0, 1.0, 0.5, key="steering_task_strength")
decoding = controls[-3].radio("Decoding", ["Greedy", "Sampling (seeded)"], horizontal=True, key="steering_decoding")
seed = controls[-2].number_input("Seed", min_value=0, value=0, key="steering_seed")
max_new_tokens = controls[-1].number_input("New tokens", min_value=1, max_value=128, value=16, key="steering_tokens")
ladder_cfg = steering.LadderConfig(
    prompt=prompt,
    strengths=figures.grid(SLIDER_MIN, SLIDER_MAX, SLIDER_STEP),
    layers=vectors.layers,
    task_strength=task_strength,
    max_new_tokens=int(max_new_tokens),
    do_sample=decoding != "Greedy",
    seed=int(seed),
    chat_template=chat_template,
)
ladder_inputs = LadderInputs(vectors, frozenset(vocabulary))
ladder_run = cached_run(steering.LADDER_NAME, ladder_cfg, ladder_inputs, label="Generating at every slider strength")
if ladder_run is not None:
    ladder = result_of(ladder_run)
    for column, key, at in zip(st.columns(2), ("baseline", "steered"), (0.0, strength), strict=True):
        row = ladder.at(at)
        with column.container(border=True, key=f"steering-{key}"):
            st.caption("Baseline · strength 0 (unsteered)" if key == "baseline" else f"Steered · strength {at:+g}")
            st.text(f"{prompt} ⟶ {row['text']}")
            st.caption(figures.generation_caption(row))

# ------------------------------------------------------------------------------------------- 3. sweep

st.header("3 · Dose-response sweep")
if not sets.facts:
    st.info("Add evaluation facts (prompt,answer pairs) to measure faithfulness and run the sweep.")
    st.stop()
left, middle, right = st.columns(3)
strength_text = left.text_input("Sweep strengths (comma-separated)", value=DEFAULT_SWEEP, key="steering_sweep")
n_facts = middle.number_input("Evaluation facts", min_value=4, max_value=2000, value=64, key="steering_n_facts")
ratio = right.number_input(
    "Collapse: distinct-2 below this share of its value at 0", 0.05, 1.0, 0.5, 0.05, key="steering_collapse_ratio"
)
try:
    sweep_strengths = figures.parse_strengths(strength_text)
except ValueError as error:
    show_error(error)
    st.stop()
sweep_cfg = steering.SweepConfig(
    strengths=sweep_strengths,
    task_strength=task_strength,
    n_facts=int(n_facts),
    collapse_ratio=float(ratio),
    chat_template=chat_template,
).resolved(vectors.layers)
sweep_run = cached_run(steering.NAME, sweep_cfg, SweepInputs(vectors, sets), label="Sweeping strengths")
if sweep_run is not None:
    sweep = result_of(sweep_run)
    if sweep.warnings:
        st.warning(figures.coverage_reminder(sweep.coverage.share_known), icon="⚠️")
    sweep_figure = figures.sweep_figure(sweep.rows, sweep.collapse, sweep.creativity_metric, sweep.unit, references)
    st.plotly_chart(sweep_figure, width="stretch", key="steering_sweep_fig")
    st.caption(
        figures.sweep_caption(
            sweep.collapse_of(), int(n_facts), sweep.creativity_metric, sweep_cfg.max_new_tokens, ratio
        )
    )
    st.dataframe(sweep.rows, hide_index=True, width="stretch", key="steering_sweep_table")
    with st.expander("Example generations per strength"):
        st.dataframe(sweep.examples, hide_index=True, width="stretch")
    run_caption(sweep_run)
    export_buttons(sweep_run, key_prefix="steering-sweep")
