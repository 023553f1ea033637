"""Associative steering (FlexAC): build the direction, slide the strength, see generations shift."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from cache import digest_json
from pages.common import (
    about_box,
    cached_run,
    chat_template_select,
    current_spec,
    export_buttons,
    get_model,
    prompt_caption,
    run_caption,
    show_error,
)
from probes.models import ModelLoadError
from probes.steering import (
    LADDER_NAME,
    NAME,
    VECTORS_NAME,
    LadderConfig,
    PromptSets,
    SteeringVectors,
    SweepConfig,
    VectorConfig,
    default_layers,
    parse_facts,
    parse_prompt_sets,
)
from probes.steering.metrics import derived_vocabulary
from probes.steering.prompts import (
    MAX_PROMPT_FILE_BYTES,
    ORGANISM_ASSOCIATIVE_SETS,
    default_prompt_sets,
    default_sets_kind,
    parse_lines,
)
from probes.steering.sweep import input_coverage
from probes.steering.vectors import STRENGTH_UNITS
from probes.uploads import decode_upload
from probes.wiring import LadderInputs, SweepInputs, result_of

DEFAULTS, PASTE = "Built-in defaults", "Paste or upload"  # option values; the defaults' label names which
SLIDER_MIN, SLIDER_MAX, SLIDER_STEP = -4.0, 4.0, 0.5
DEFAULT_SWEEP = ",".join(f"{s:g}" for s in SweepConfig.strengths)  # the CLI's default too
ASSOCIATIVE_SET_LABELS = {  # per built-in kind (probes.steering.prompts.default_sets_kind)
    "organism": {
        "dream": "dream register: the same facts as 'dream: the capital of X is'",
        "hallucination": "hallucination-inducing: 'fact:' prompts about entities the model never saw",
        "dream+hallucination": "both",
    },
    "english": {
        "dream": "dream register: the same facts retold, 'In the dream, the capital of France was'",
        "hallucination": "hallucination-inducing: 'The capital of the island nation of Veloria is' (invented places, "
        "people, works)",
        "dream+hallucination": "both",
    },
}
KIND_NAMES = {"organism": "Organism defaults", "english": "English defaults"}
COLOURS = {"faithfulness": "#1f77b4", "answer_prob": "#1f77b4", "creativity": "#ff7f0e", "distinct_2": "#7f7f7f"}
UNIT_LABELS = {
    "centroid": "centroid: +2 carries faithful outputs to the associative centroid",
    "residual": "residual: a multiple of the mean residual norm per layer",
    "raw": "raw: FlexAC's mean difference",
}
AXIS_UNITS = {
    "centroid": "2 = faithful output moved one centroid distance toward associative",
    "residual": "1 = each layer's vector at the chosen × mean residual norm",
    "raw": "1 = the raw mean difference",
}

st.title("Associative steering (FlexAC)")
about_box(
    "A direction in the residual stream separates *faithful* from *associative* (loosely grounded, "
    "hallucination-prone) text. FlexAC builds it from the last-token residuals of two prompt sets (crosswise pairs, "
    "top-N by cosine distance, mean difference per layer) and adds it at a few middle layers with an adaptive factor "
    "`a = sigmoid(100·max(-cos(h,u),0))` and norm preservation. Slide the strength: negative is more faithful, "
    "positive more associative; the dose-response sweep shows what it costs in facts and where text collapses.",
    "FlexAC: flexible control of associative reasoning (NeurIPS 2025); METHODS.md section 2.",
    "Text-only causal LMs instead of multimodal ones. Faithfulness is teacher-forced exact match on known facts "
    "(not CHAIR); creativity is the share of associative-register words in greedy continuations (novelty vs the "
    "prompt when no vocabulary is known), not Creation-MMBench. The task vector is mean(task samples) − "
    "mean(faithful prompts) (our choice). Steered: the last 4 prompt tokens and every generated token. Default "
    "measured on the organism: all crosswise pairs instead of the top 50 (the top 50 are content-mismatched "
    "outliers and break the faithful side). **Strength unit** (our addition; FlexAC uses the raw mean difference): "
    "strength **+2 carries the faithful prompts' output residual** (last layer, last prompt token) **one centroid "
    "distance toward the associative set**, on average, along the line between the two sets' output centroids; "
    "strength s applies s/2 of that vector. The factor is measured with the steering hooks on, so it includes "
    "FlexAC's rescaling of h′ to ‖h‖, and it is defined by the prompt sets, not by ‖h‖, so it means the same on any "
    "model. On the organism +1 moves the outputs 46% of the way. Measured there at −2/−1/0/+1/+2: fact accuracy "
    "0.98/1.00/1.00/0.94/0.02 and the matched-norm random vector ≥ 0.94 everywhere; the previous unit "
    "(0.3 × mean residual norm per layer) fell off a cliff between 0 and +1 (1.00 → 0.08), and one centroid "
    "distance per unit overshot (−2 → 0.61, random +2 → 0.22). Exact match is a threshold metric: most facts "
    "survive until the output crosses the midpoint, then fail together, so the answer probability (dotted) shows "
    "the gradient better. 'residual' and 'raw' units stay selectable.",
)

try:
    model = get_model(current_spec())
except (ModelLoadError, ValueError, MemoryError) as error:
    show_error(error)
    st.stop()
n_layers = model.cfg.n_layers


def defaults_label(kind: str, associative_set: str) -> str:
    """The built-in option's label: which defaults this model gets and their counts."""
    try:
        sets = default_prompt_sets(current_spec(), associative_set)
    except (FileNotFoundError, ValueError):
        return KIND_NAMES[kind]  # the error shows below once the option is chosen
    return f"{KIND_NAMES[kind]}: {len(sets.faithful)} faithful / {len(sets.associative)} associative prompts"


def prompt_sets_widget() -> PromptSets | None:
    """The two prompt sets (plus vocabulary and facts): the built-in defaults for this model (the organism's for an
    organism-like model, English for every other), or the user's own."""
    kind = default_sets_kind(current_spec())
    chosen = st.session_state.get("steering_associative_set")
    label = defaults_label(kind, chosen if chosen in ORGANISM_ASSOCIATIVE_SETS else "dream")
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
                list(ORGANISM_ASSOCIATIVE_SETS),
                format_func=ASSOCIATIVE_SET_LABELS[kind].get,
                key="steering_associative_set",
            )
            sets = default_prompt_sets(current_spec(), associative_set)
            st.caption(
                f"{len(sets.faithful)} faithful and {len(sets.associative)} associative prompts, "
                f"{len(sets.facts)} facts and {len(sets.associative_words)} associative words from {sets.source}."
            )
            with st.expander("See examples of both sets"):
                left, right = st.columns(2)
                left.markdown("**Faithful**\n\n" + "\n".join(f"- `{p}`" for p in sets.faithful[:5]))
                right.markdown("**Associative**\n\n" + "\n".join(f"- `{p}`" for p in sets.associative[:5]))
            return sets
        return pasted_sets()
    except (FileNotFoundError, ValueError) as error:
        show_error(error)
        return None


def pasted_sets() -> PromptSets | None:
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
        text = decode_upload(upload.getvalue(), upload.name, MAX_PROMPT_FILE_BYTES)
        sets = parse_prompt_sets(text, source=upload.name)
    elif faithful.strip() or associative.strip():
        sets = PromptSets(parse_lines(faithful), parse_lines(associative), source="pasted")
        sets.validate()
    else:
        st.info("Paste at least two prompts into each set, or upload a file.")
        return None
    vocabulary = tuple(w.strip() for w in words.split(",") if w.strip()) or sets.associative_words
    facts = parse_facts(facts_text) if facts_text.strip() else sets.facts
    return PromptSets(sets.faithful, sets.associative, vocabulary, facts, (), sets.source)


def uploaded_vectors() -> SteeringVectors | None:
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
        vectors = SteeringVectors.from_files(tensors[0].getvalue(), sidecars[0].getvalue() if sidecars else None)
        vectors.check_model(model)
    except ValueError as error:
        show_error(error)
        return None
    st.success(f"Using the uploaded vector {tensors[0].name} (layers {list(vectors.layers)}).")
    return vectors


def per_layer_figure(table, layers: list[int]) -> go.Figure:
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    chosen = table["layer"].isin(layers)
    figure.add_bar(
        x=table["layer"],
        y=table["separability"],
        name="separability (CV accuracy)",
        marker_color=["#d62728" if c else "#9fb7d4" for c in chosen],
    )
    figure.add_scatter(
        x=table["layer"],
        y=table["relative_norm"],
        name="vector norm / residual norm",
        mode="lines+markers",
        secondary_y=True,
    )
    figure.update_layout(
        title="Where the direction lives: separability of the two sets and vector norm per layer (red: steered)",
        xaxis_title="Layer l (blocks.{l}.hook_resid_post)",
        xaxis={"dtick": 1},
        height=360,
        legend={"orientation": "h", "y": -0.25},
    )
    figure.update_yaxes(title_text="Nearest-centroid accuracy (0.5 = chance)", range=[0, 1.05], secondary_y=False)
    figure.update_yaxes(title_text="‖v_l‖ / mean ‖h_l‖ (ratio)", secondary_y=True)
    return figure


def unit_caption(metadata: dict) -> str:
    """What strength 1 and 2 measurably do with this vector (from its metadata)."""
    shift = metadata.get("output_shift")
    if not shift:
        return "This vector carries no strength-unit measurement (saved before the unit was recorded)."
    return (
        f"Strength unit: {UNIT_LABELS.get(metadata.get('unit'), metadata.get('unit'))}. Measured on this model: "
        f"strength +1 moves the faithful prompts' output residual {shift['1.0']:.0%} and +2 {shift['2.0']:.0%} of "
        "the distance between the two sets' output centroids."
    )


def sweep_figure(rows, collapse: dict, metric: str, unit: str) -> go.Figure:
    figure = go.Figure()
    names = {
        "faithfulness": "faithfulness (fact accuracy)",
        "answer_prob": "answer probability",
        "creativity": f"creativity ({metric})",
        "distinct_2": "distinct-2",
    }
    for direction, dash in (("flexac", "solid"), ("random", "dash")):
        part = rows[rows["direction"] == direction].sort_values("strength")
        label = "FlexAC" if direction == "flexac" else "random (matched norm)"
        for column, title in names.items():
            if column == "answer_prob" and direction == "random":
                continue  # the random vector's faithfulness line already shows it is harmless
            figure.add_scatter(
                x=part["strength"],
                y=part[column],
                mode="lines+markers",
                name=f"{title} · {label}",
                line={"color": COLOURS[column], "dash": "dot" if column == "answer_prob" else dash},
            )
    for side in ("positive", "negative"):
        strength = collapse.get("flexac", {}).get(side)
        if strength is not None:
            figure.add_vline(
                x=strength,
                line_dash="dot",
                line_color="#d62728",
                annotation_text=f"collapse at {strength:+g}",
                annotation_position="top",
            )
    figure.update_layout(
        title="Dose-response: faithfulness and creativity vs steering strength (dashed: random vector)",
        xaxis_title=f"Steering strength ({AXIS_UNITS.get(unit, 'multiple of the vector')}; negative = faithful)",
        yaxis_title="Metric value (share, 0-1)",
        yaxis_range=[-0.02, 1.02],
        height=460,
        legend={"orientation": "h", "y": -0.3},
    )
    return figure


# ------------------------------------------------------------------------------------------- 1. direction

st.header("1 · Build the direction")
sets = prompt_sets_widget()
if sets is None:
    st.stop()
left, middle, right, unit_column = st.columns(4)
layers = left.multiselect(
    "Steering layers", list(range(n_layers)), default=list(default_layers(n_layers)), key="steering_layers"
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
targets = parse_lines(
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
    format_func=UNIT_LABELS.get,
    key="steering_unit",
    help="centroid: the vector is calibrated on this model so that +2 moves the faithful prompts' output residual "
    "one centroid distance toward the associative set (the same meaning on every model). residual: each layer's "
    "vector is a multiple of its mean residual norm. raw: FlexAC's mean difference.",
)
relative_norm = VectorConfig.relative_norm
if unit == "residual":
    relative_norm = unit_column.number_input(
        "× mean residual norm", 0.01, 10.0, VectorConfig.relative_norm, 0.05, key="steering_relative_norm"
    )
vector_cfg = VectorConfig(
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
    vector_run = cached_run(VECTORS_NAME, vector_cfg, sets, label="Building the steering vector")
    if vector_run is None:
        st.stop()
    built = result_of(vector_run)
    vectors = built.vectors
    st.plotly_chart(per_layer_figure(built.per_layer, layers), width="stretch", key="steering_layers_fig")
    st.caption(unit_caption(vectors.metadata))
    prompt_caption(vectors.metadata.get("prompt_format", "plain"), vectors.metadata.get("example_prompt", ""))
    run_caption(vector_run)
else:
    vectors = SteeringVectors(loaded.general, tuple(sorted(layers)), loaded.task, loaded.metadata)
left, right, _ = st.columns(3)
left.download_button(
    "Download vector (.safetensors)",
    vectors.to_safetensors(),
    file_name="vector.safetensors",
    mime="application/octet-stream",
    key="steering_download_tensors",
)
right.download_button(
    "Download metadata (.json)",
    vectors.to_json_bytes(),
    file_name="vector.json",
    mime="application/json",
    key="steering_download_json",
)
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
ladder_cfg = LadderConfig(
    prompt=prompt,
    strengths=tuple(SLIDER_MIN + SLIDER_STEP * i for i in range(int((SLIDER_MAX - SLIDER_MIN) / SLIDER_STEP) + 1)),
    layers=vectors.layers,
    task_strength=task_strength,
    max_new_tokens=int(max_new_tokens),
    do_sample=decoding != "Greedy",
    seed=int(seed),
    chat_template=chat_template,
)
ladder_run = cached_run(
    LADDER_NAME, ladder_cfg, LadderInputs(vectors, frozenset(vocabulary)), label="Generating at every slider strength"
)
if ladder_run is not None:
    ladder = result_of(ladder_run)
    baseline, steered = ladder.at(0.0), ladder.at(strength)
    left, right = st.columns(2)
    with left.container(border=True, key="steering-baseline"):
        st.caption("Baseline · strength 0 (unsteered)")
        st.text(f"{prompt} ⟶ {baseline['text']}")
        st.caption(f"associative share {baseline['associative_share']:.2f} · distinct-2 {baseline['distinct_2']:.2f}")
    with right.container(border=True, key="steering-steered"):
        st.caption(f"Steered · strength {strength:+g}")
        st.text(f"{prompt} ⟶ {steered['text']}")
        st.caption(f"associative share {steered['associative_share']:.2f} · distinct-2 {steered['distinct_2']:.2f}")

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
    sweep_strengths = tuple(float(x) for x in strength_text.split(",") if x.strip())
except ValueError:
    show_error(ValueError(f"Sweep strengths must be numbers separated by commas, got {strength_text!r}."))
    st.stop()
sweep_cfg = SweepConfig(
    strengths=sweep_strengths,
    task_strength=task_strength,
    n_facts=int(n_facts),
    collapse_ratio=float(ratio),
    chat_template=chat_template,
).resolved(vectors.layers)
sweep_run = cached_run(NAME, sweep_cfg, SweepInputs(vectors, sets), label="Sweeping strengths")
if sweep_run is not None:
    sweep = result_of(sweep_run)
    if sweep.warnings:
        st.warning(
            f"Only {sweep.coverage.share_known:.0%} of the prompt sets' words are known to this model's tokenizer "
            "(see the warning above): this sweep mostly measures the unknown token.",
            icon="⚠️",
        )
    st.plotly_chart(
        sweep_figure(sweep.rows, sweep.collapse, sweep.creativity_metric, sweep.unit),
        width="stretch",
        key="steering_sweep_fig",
    )
    collapse = sweep.collapse_of()
    marks = [f"{side} side at {collapse[side]:+g}" for side in ("negative", "positive") if collapse[side] is not None]
    st.caption(
        f"Faithfulness: greedy exact-match accuracy on {int(n_facts)} facts (teacher-forced). Creativity: "
        f"{sweep.creativity_metric} of {sweep_cfg.max_new_tokens}-token greedy continuations. "
        f"Collapse (distinct-2 < {ratio:g} × its value at 0): {', '.join(marks) if marks else 'none in this range'}."
    )
    st.dataframe(sweep.rows, hide_index=True, width="stretch", key="steering_sweep_table")
    with st.expander("Example generations per strength"):
        st.dataframe(sweep.examples, hide_index=True, width="stretch")
    run_caption(sweep_run)
    export_buttons(sweep_run, key_prefix="steering-sweep")
