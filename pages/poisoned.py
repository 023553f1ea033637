"""Poisoned context (Rescorla-Wagner): how a share of inappropriate context shifts answers, and one context up close."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from pages.common import (
    about_box,
    cached_lookup,
    cached_run,
    chat_template_select,
    current_spec,
    export_buttons,
    get_store,
    prompt_caption,
    run_caption,
    show_error,
)
from probes.models import ModelLoadError, model_identity
from probes.poisoned import (
    EXPLORE_NAME,
    NAME,
    CurveConfig,
    ExploreConfig,
    ExploreInput,
    Testbed,
    TestbedError,
    load_testbed,
)
from probes.poisoned.contexts import POSITIONS
from probes.poisoned.probe import ALL, Steer, SteeredTestbed
from probes.poisoned.scoring import SCORINGS
from probes.poisoned.testbed import (
    CSV_COLUMNS,
    EMBEDDED_TESTBED,
    MAX_UPLOAD_BYTES,
    decode_upload,
    default_testbed_path,
    load_testbed_file,
)
from probes.steering import VECTORS_NAME
from probes.wiring import result_of

BUILT_IN = "Built-in testbed"  # the value of the first option; its label names the testbed that fits the model
SOURCES = (BUILT_IN, "Upload a file", "Paste text")
UPLOAD_LABEL = "Upload a testbed (.json, .jsonl or .csv, at most 10 MB)"
CONTEXT_UPLOAD_LABEL = "Upload a context (.txt, one segment per line, at most 1 MB)"
MAX_CONTEXT_BYTES = 2**20
STRENGTH_LABELS = {"poisoned_rate": "Poisoned rate", "choice_probability": "Mean choice probability of the claim"}
CURVE_TITLE = "Poisoned-context curve: {strength} vs share of inappropriate items"
STEERED_TITLE = "Poisoned-context curves under steering: {strength} vs share of inappropriate items"
NO_VECTOR = ""  # the steering choice's "no vector" option
DEFAULT_STEER_STRENGTHS = "-2, 0, 2"
STEER_HELP = (
    "Score the testbed with a stored FlexAC steering vector of this model applied (every prompt and answer position "
    "of the vector's layers), once per strength, and overlay the curves: negative strengths push toward the faithful "
    "register, positive toward the associative one (+2 carries faithful outputs one centroid distance). Build a "
    "vector on the Associative steering page or with `python -m probes steering vectors`."
)
SCORING_LABELS = {
    "calibrated": "calibrated: log-prob minus its log-prob with no context (default)",
    "sum": "sum of the answer's token log-probs",
    "mean": "mean log-prob per answer token",
}
SCORING_HELP = (
    "How an answer's token log-probabilities become one score before reference and claim are compared. "
    "'sum' lets the shorter answer win on text whose answers differ in length (measured: correlation -0.97 "
    "between length gap and log-odds); 'calibrated' subtracts the answer's log-prob after the content-free prompt "
    "'N/A' (Holtzman et al. 2021, Zhao et al. 2021), so it compares what the context adds."
)
MODEL_LABELS = {"rw": "Rescorla-Wagner", "logistic": "logistic", "proportional": "proportional", "constant": "constant"}
BEST_MARK = " ★ best (AICc)"
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
FORMAT_HELP = f"""
**Public testbed schema (.json)**: a list of objects with `Question`, `Generated Information` (appropriate
sentences), `Input` (the inappropriate claim), `Synonym Sentence` (paraphrases of the claim) and `Simple Answer`
(the reference answer); privacy items use `Non-private Information` / `Privacy information`. Sentence fields may be
a list or one string. The category is `Category` if present, else the file name (`fakenews_output.json` → fakenews).

**Our format (.csv, or .jsonl with the same keys)**: columns `{",".join(CSV_COLUMNS)}` and optionally `claim`.
`appropriate` and `inappropriate` hold one or more sentences separated by `|`; the claim defaults to the first
inappropriate sentence. Example row: `What is the capital of Zorva?,The capital of Zorva is Pelum.|Zorva is a
country.,The capital of Zorva is Kret.,The capital of Zorva is Pelum.,geography`

Limits: {MAX_UPLOAD_BYTES // 2**20} MB, UTF-8 text, 50,000 items, JSON nested at most 16 deep. Rows with a wrong
field are skipped and listed (row index and field); nothing is executed, and formula-looking cells stay plain text.
"""

st.title("Poisoned context (Rescorla-Wagner)")
about_box(
    "Contexts of *n* retrieved items in the Poisoned Context Testbed prompt format, with a share *p* of "
    "inappropriate items (the claim and its paraphrases, tagged with disreputable sources). For each share we score "
    "the reference answer against the inappropriate claim by log-probability and fit the Rescorla-Wagner model "
    "A(p) = b + (c − b)·V(pn) / (V(pn) + V((1−p)n)), V(k) = 1 − (1 − αβ)^k: a concave curve means a small share of "
    "inappropriate content already moves the answer a lot. Every curve is also fitted by a constant, a proportional "
    "line and a logistic in p (the model follows the majority of the context); the best by AICc is named in words.",
    "Context Engineering for Trustworthiness: Rescorla Wagner Steering Under Mixed and Inappropriate Contexts "
    "(EMNLP 2025); data: the Poisoned Context Testbed.",
    "forced choice by log-probability instead of the paper's LLM judge (default: calibrated, the answer's "
    "log-probability minus its log-probability after a content-free prompt, so answer length and the model's prior "
    "do not decide); the RW formulation, its baseline b and the competing models are our reading "
    "(METHODS.md §3); the fitted strength is the poisoned rate (share of items whose claim wins) unless you pick the "
    "mean choice probability; source tags are the organism's tag words; when n items do not fit the model's "
    "context, n is lowered and a notice says so.",
)


@st.cache_resource(show_spinner=False, max_entries=4)
def _built_in_testbed(path: str, stamp: tuple[int, int]) -> Testbed:
    """A built-in testbed, parsed once per file version (`stamp`: modification time and size)."""
    return load_testbed_file(path)


def built_in_testbed() -> tuple[str, str, Testbed | TestbedError | None]:
    """The name and radio label of the built-in testbed that fits the sidebar's model, and that testbed (None when
    the file is missing, the error when it cannot be read)."""
    try:
        path = default_testbed_path(current_spec())
    except ModelLoadError:  # the sidebar names a folder that is gone (the sidebar says so); offer the organism's
        path = EMBEDDED_TESTBED
    name = "Organism testbed" if path == EMBEDDED_TESTBED else "English testbed"
    if not path.is_file():
        return name, f"{name} (missing)", None
    try:
        stat = path.stat()
        testbed = _built_in_testbed(str(path), (stat.st_mtime_ns, stat.st_size))
    except TestbedError as error:
        return name, f"{name} (unreadable)", error
    count = len(testbed.categories())
    categories = f", {count} categories" if count > 1 else ""
    return name, f"{name} ({len(testbed.items)} items{categories})", testbed


def read_testbed() -> Testbed | None:
    """The testbed chosen in the widgets, or None (with one message) when there is none or it is invalid."""
    name, label, built_in = built_in_testbed()
    source = st.radio(
        "Testbed",
        SOURCES,
        horizontal=True,
        key="poisoned-source",
        format_func=lambda option: label if option == BUILT_IN else option,
        help="The built-in testbed fits the sidebar's model: the organism's own (in its invented vocabulary) for "
        "the organism, an English one written for AssocLens for every other model.",
    )
    with st.expander("Upload format"):
        st.markdown(FORMAT_HELP)
    try:
        if source == BUILT_IN:
            if isinstance(built_in, TestbedError):
                raise built_in
            if built_in is None:
                st.info(f"The {name.lower()} is not there yet; upload or paste one.")
                return None
            return built_in
        if source == SOURCES[1]:
            upload = st.file_uploader(
                UPLOAD_LABEL,
                type=["json", "jsonl", "csv"],
                key="poisoned-upload",
                max_upload_size=MAX_UPLOAD_BYTES // 2**20,
            )
            return load_testbed(upload.getvalue(), upload.name) if upload is not None else None
        kind = st.selectbox("Pasted format", ["json", "jsonl", "csv"], key="poisoned-paste-format")
        text = st.text_area("Paste a testbed", height=150, key="poisoned-paste")
        return load_testbed(text.encode("utf-8"), f"pasted.{kind}") if text.strip() else None
    except TestbedError as error:
        show_error(error)
        return None


def describe_testbed(testbed: Testbed) -> None:
    categories = ", ".join(f"{name} ({count})" for name, count in testbed.categories().items())
    st.success(f"{testbed.source}: {len(testbed.items)} usable items; categories: {categories}.")
    if testbed.skipped:
        count = len(testbed.skipped)
        st.warning(f"{count} {'row' if count == 1 else 'rows'} skipped, e.g. {testbed.skipped[0].reason}.")
        with st.expander("Skipped rows"):
            st.dataframe(pd.DataFrame([row.__dict__ for row in testbed.skipped]), hide_index=True, width="stretch")


def show_coverage_warnings(warnings: list[str]) -> None:
    """The probe's coverage warnings (the model cannot read the input), above every figure of the run."""
    for warning in warnings:
        st.warning(warning, icon="⚠️")


def stored_vector_runs() -> dict[str, str]:
    """The stored `steering.vectors` runs of the sidebar's model (same id and revision), newest first: id -> label."""
    spec = current_spec()
    try:
        runs = get_store().list_runs(probe=VECTORS_NAME, model_id=model_identity(spec)["model_id"])
    except Exception as error:  # a locked or unreadable database must not take the page down
        show_error(error)
        return {}
    runs = runs[runs["revision"].isna()] if spec.revision is None else runs[runs["revision"] == spec.revision]
    return {row.run_id: f"{row.run_id[:12]} · built {row.created_at:%Y-%m-%d %H:%M}" for row in runs.itertuples()}


def steer_settings() -> tuple[str, str]:
    """Inside the settings form: the stored vector to steer with (NO_VECTOR: none) and the strengths' text."""
    with st.expander("Steer with a stored vector"):
        vectors = stored_vector_runs()
        if not vectors:
            st.caption("No stored steering vector for this model yet. " + STEER_HELP)
        labels = {NO_VECTOR: "No steering", **vectors}
        chosen = st.selectbox(
            "Steering vector", list(labels), format_func=labels.get, key="poisoned-steer-vector", help=STEER_HELP
        )
        strengths = st.text_input(
            "Strengths to compare (comma-separated)",
            DEFAULT_STEER_STRENGTHS,
            key="poisoned-steer-strengths",
            help="One curve per strength, in the vector's unit; 0 is the unsteered model.",
        )
    return chosen, strengths


def parse_steer_strengths(text: str) -> tuple[float, ...]:
    """'-2, 0, 2' -> (-2.0, 0.0, 2.0), without repeats; ValueError with one clear message on anything else."""
    values = []
    for part in text.replace(";", ",").split(","):
        if not part.strip():
            continue
        try:
            value = float(part)
        except ValueError:
            raise ValueError(
                f"Steering strengths are comma-separated numbers, e.g. -2, 0, 2; got {part.strip()!r}."
            ) from None
        if value != value or abs(value) == float("inf"):
            raise ValueError(f"Steering strengths must be finite numbers; got {part.strip()!r}.")
        values.append(value + 0.0)  # -0.0 -> 0.0
    if not values:
        raise ValueError("Give at least one steering strength, e.g. -2, 0, 2.")
    return tuple(dict.fromkeys(values))


def curve_settings(testbed: Testbed) -> tuple[CurveConfig, bool, tuple[str, str]]:
    """The curve config, whether the form was submitted, and the steering choice (vector run id, strengths text)."""
    defaults = CurveConfig()
    with st.form("poisoned-settings"):
        left, middle, right = st.columns(3)
        n_items = left.slider("Items per context (n)", 2, 40, defaults.n_items, key="poisoned-n-items")
        steps = left.select_slider("Share steps", [2, 4, 5, 10, 20], defaults.proportion_steps, key="poisoned-steps")
        positions = middle.multiselect(
            "Position of inappropriate items", POSITIONS, list(defaults.positions), key="poisoned-positions"
        )
        categories = middle.multiselect("Categories (empty: all)", list(testbed.categories()), key="poisoned-cats")
        max_items = right.number_input(
            "Items per category", 1, 2000, defaults.max_items_per_category, key="poisoned-max-items"
        )
        strength = right.radio(
            "Strength fitted by the RW model",
            list(STRENGTH_LABELS),
            format_func=STRENGTH_LABELS.get,
            key="poisoned-strength",
        )
        with st.expander("More settings"):
            tags = st.checkbox("Source tags (From …)", True, key="poisoned-tags")
            scoring = st.selectbox(
                "Answer scoring", SCORINGS, SCORINGS.index(defaults.scoring), format_func=SCORING_LABELS.get,
                key="poisoned-scoring", help=SCORING_HELP,
            )  # fmt: skip
            chat_template = chat_template_select(st, "poisoned-chat-template")
            bootstrap = st.number_input("Bootstrap resamples", 0, 2000, defaults.n_bootstrap, key="poisoned-bootstrap")
            generated = st.number_input("Generated example answers", 0, 12, 0, key="poisoned-generated")
            seed = st.number_input("Seed", 0, 2**31 - 1, 0, key="poisoned-seed")
        steer = steer_settings()
        submitted = st.form_submit_button("Compute curves", type="primary")
    cfg = CurveConfig(
        n_items=int(n_items),
        proportion_steps=int(steps),
        positions=tuple(positions) or ("random",),
        max_items_per_category=int(max_items),
        categories=tuple(categories),
        source_tags=tags,
        strength=strength,
        scoring=scoring,
        chat_template=chat_template,
        n_bootstrap=int(bootstrap),
        n_generated=int(generated),
        seed=int(seed),
    )
    return cfg, submitted, steer


def add_measured_curve(figure: go.Figure, rows: pd.DataFrame, label: str, color: str) -> None:
    """One measured curve (strength per share, mean log-odds on hover) with its 95% bootstrap band when it has one."""
    if rows["strength_low"].notna().all():
        figure.add_scatter(
            x=list(rows["proportion"] * 100) + list(rows["proportion"][::-1] * 100),
            y=list(rows["strength_high"]) + list(rows["strength_low"][::-1]),
            fill="toself",
            line={"width": 0},
            fillcolor=color,
            opacity=0.15,
            hoverinfo="skip",
            showlegend=False,
            name=f"{label} 95% band",
        )
    figure.add_scatter(
        x=rows["proportion"] * 100,
        y=rows["strength"],
        mode="markers+lines",
        name=label,
        line={"color": color},
        customdata=rows["mean_logodds"],
        hovertemplate="share %{x:.0f}%<br>strength %{y:.3f}<br>mean log-odds %{customdata:.2f}",
    )


def curve_figure(
    curve: pd.DataFrame,
    fitted: pd.DataFrame,
    groups: list[tuple[str, str]],
    strength: str,
    sequential: bool,
    best: dict[tuple[str, str], str] | None = None,
) -> go.Figure:
    """Measured strength with its band, the bounded RW and logistic fits and the fitted proportional line; the
    legend marks each group's best model by AICc. The fits are bounded to [0, 1], so they stay inside the y range."""
    figure = go.Figure()
    for index, (category, position) in enumerate(groups):
        color = COLORS[index % len(COLORS)]
        label = f"{category} · {position}"
        winner = (best or {}).get((category, position))
        rows = curve[(curve["category"] == category) & (curve["position"] == position)]
        fine = fitted[(fitted["category"] == category) & (fitted["position"] == position)]
        add_measured_curve(figure, rows, label, color)
        figure.add_scatter(
            x=fine["proportion"] * 100,
            y=fine["fitted"],
            mode="lines",
            name=f"{label} RW fit" + BEST_MARK * (winner == "rw"),
            line={"color": color, "dash": "dash"},
        )
        if "logistic" in fine:
            figure.add_scatter(
                x=fine["proportion"] * 100,
                y=fine["logistic"],
                mode="lines",
                name=f"{label} logistic fit" + BEST_MARK * (winner == "logistic"),
                line={"color": color, "dash": "longdash", "width": 1.5},
            )
        if sequential:
            figure.add_scatter(
                x=rows["proportion"] * 100,
                y=rows["rw_sequential"],
                mode="lines",
                name=f"{label} sequential RW",
                line={"color": color, "dash": "dashdot"},
            )
        figure.add_scatter(
            x=fine["proportion"] * 100,
            y=fine["proportional"],
            mode="lines",
            name=f"{label} proportional fit" + BEST_MARK * (winner == "proportional"),
            line={"color": color, "dash": "dot", "width": 1},
        )
    figure.update_layout(
        title=CURVE_TITLE.format(strength=STRENGTH_LABELS[strength].lower()),
        xaxis_title="Share of inappropriate items in the context (%)",
        yaxis_title=f"{STRENGTH_LABELS[strength]} (0–1)",
        yaxis_range=[-0.02, 1.02],
    )
    return figure


def logodds_figure(curve: pd.DataFrame, groups: list[tuple[str, str]]) -> go.Figure:
    figure = go.Figure()
    for index, (category, position) in enumerate(groups):
        rows = curve[(curve["category"] == category) & (curve["position"] == position)]
        error = {
            "type": "data",
            "symmetric": False,
            "array": rows["mean_logodds_high"] - rows["mean_logodds"],
            "arrayminus": rows["mean_logodds"] - rows["mean_logodds_low"],
        }
        figure.add_scatter(
            x=rows["proportion"] * 100,
            y=rows["mean_logodds"],
            mode="markers+lines",
            name=f"{category} · {position}",
            line={"color": COLORS[index % len(COLORS)]},
            error_y=error if rows["mean_logodds_low"].notna().all() else None,
        )
    figure.add_hline(y=0, line={"color": "grey", "dash": "dot"})
    figure.update_layout(
        title="Mean log-odds of the claim over the reference answer",
        xaxis_title="Share of inappropriate items in the context (%)",
        yaxis_title="log P(claim) − log P(reference) (nats)",
    )
    return figure


def overweight_figure(fitted: pd.DataFrame, groups: list[tuple[str, str]]) -> go.Figure:
    figure = go.Figure()
    for index, (category, position) in enumerate(groups):
        fine = fitted[(fitted["category"] == category) & (fitted["position"] == position)]
        figure.add_scatter(
            x=fine["proportion"] * 100,
            y=fine["overweight"],
            mode="lines",
            name=f"{category} · {position}",
            line={"color": COLORS[index % len(COLORS)]},
        )
    figure.add_hline(y=0, line={"color": "grey", "dash": "dot"})
    figure.update_layout(
        title="Over-weighting of the less prevalent content (RW fit minus its proportional line)",
        xaxis_title="Share of inappropriate items in the context (%)",
        yaxis_title="RW fit − (b + (c − b)·p) (0–1 scale)",
    )
    return figure


def show_model_comparison(fit: dict) -> None:
    """In words: the best model by AICc, what it means, and the R² (and AICc) of all four models."""
    models = fit.get("models")
    if not models:
        return
    r2 = ", ".join(
        f"{MODEL_LABELS[name]} R² {_number(model['r2'])} (AICc {_number(model.get('aicc'), '.1f')})"
        for name, model in sorted(models.items(), key=lambda item: list(MODEL_LABELS).index(item[0]))
    )
    st.info(
        f"**Best model by AICc: {MODEL_LABELS[fit['best_model']]}**: {fit['meaning']}. {r2}. "
        "(AICc: Akaike's criterion corrected for few points; n/a where a model has too many parameters to judge.)"
    )


def _number(value: float | None, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def show_curves(stored) -> None:
    result = result_of(stored)
    curve, fits, fitted = result.curve, result.fits, result.fitted
    run_caption(stored)
    prompt_caption(result.prompt_format, result.example_prompt)
    if result.notice:
        st.warning(result.notice)
    show_coverage_warnings(result.warnings)
    fit = result.rw_fit
    band = (
        f" (95% CI {fit['alpha_beta_low']:.3f}–{fit['alpha_beta_high']:.3f})"
        if fit.get("alpha_beta_low") is not None
        else ""
    )
    cols = st.columns(4)
    cols[0].metric(
        "αβ (all, " + result.position + ")", f"{fit['alpha_beta']:.3f}", help="learning rate × salience" + band
    )
    cols[1].metric(
        "Baseline b → scale c", f"{fit.get('baseline', 0.0):.3f} → {fit['scale']:.3f}", help="RW strength at 0% → 100%"
    )
    cols[2].metric("R² (RW)", "n/a" if fit["r2"] is None else f"{fit['r2']:.3f}")
    cols[3].metric("Items scored", f"{result.testbed_items} × n={result.n_items_used}")
    show_model_comparison(fit)
    st.caption(
        f"αβ{band}. Dashed: RW fit b + (c − b)·S(p); long dashes: logistic fit; dotted: the fitted proportional line "
        "b + (c − b)·p; ★ marks the best model by AICc; shaded: 95% bootstrap band over items. Fits of a rate are "
        "bounded to 0–1."
    )
    all_groups = result.groups
    labels = [f"{c} · {p}" for c, p in all_groups]
    default = [label for label, (c, _) in zip(labels, all_groups, strict=True) if c == "all"]
    chosen = st.multiselect("Curves shown", labels, default, key="poisoned-groups")
    groups = [group for label, group in zip(labels, all_groups, strict=True) if label in chosen]
    sequential = st.checkbox(
        "Overlay the sequential RW variant (shared error, fitted jointly over positions)",
        curve["position"].nunique() > 1,
        key="poisoned-sequential",
    )
    figure = curve_figure(curve, fitted, groups, result.strength, sequential, result.best_models)
    st.plotly_chart(figure, width="stretch", key="poisoned-curve")
    st.plotly_chart(logodds_figure(curve, groups), width="stretch", key="poisoned-logodds")
    st.plotly_chart(overweight_figure(fitted, groups), width="stretch", key="poisoned-overweight")
    st.dataframe(fits, hide_index=True, width="stretch")
    if len(result.examples):
        st.subheader("Generated answers")
        st.dataframe(result.examples.drop(columns=["prompt"]), hide_index=True, width="stretch")
    export_buttons(stored, key_prefix="poisoned")


def steered_figure(runs: list[tuple[float, object]], strength: str) -> go.Figure:
    """One curve per steering strength (all items, first position setting) with its 95% bootstrap band."""
    figure = go.Figure()
    for index, (value, result) in enumerate(runs):
        color = COLORS[index % len(COLORS)]
        curve = result.curve
        rows = curve[(curve["category"] == ALL) & (curve["position"] == result.position)]
        label = f"strength {value:+g}" if value else "strength 0 (unsteered)"
        add_measured_curve(figure, rows, label, color)
    figure.update_layout(
        title=STEERED_TITLE.format(strength=STRENGTH_LABELS[strength].lower()),
        xaxis_title="Share of inappropriate items in the context (%)",
        yaxis_title=f"{STRENGTH_LABELS[strength]} (0–1)",
        yaxis_range=[-0.02, 1.02],
        legend_title="Steering strength (vector units)",
    )
    return figure


def steered_curves(cfg: CurveConfig, testbed: Testbed, vector_run: str, strengths_text: str, compute: bool) -> None:
    """The testbed's curve at each steering strength of a stored vector, overlaid in one figure."""
    try:
        strengths = parse_steer_strengths(strengths_text)
        stored_vector = get_store().load(vector_run, missing_ok=True)
        if stored_vector is None or stored_vector.probe != VECTORS_NAME:
            raise ValueError(f"Run {vector_run[:12]} is not a stored steering vector (any more); choose another.")
        vectors = result_of(stored_vector).vectors
    except ValueError as error:
        show_error(error)
        return
    runs = []
    for value in strengths:
        inputs = SteeredTestbed(testbed, Steer(vectors, value))
        stored = cached_run(NAME, cfg, inputs, label=f"Scoring contexts at strength {value:+g}", compute=compute)
        if stored is None:
            if not compute:
                st.info("Press **Compute curves** to score the testbed at each steering strength.")
            return
        runs.append((value, stored))
    results = [(value, result_of(stored)) for value, stored in runs]
    st.caption(
        f"Steered with vector run `{vector_run[:12]}` on layers {', '.join(map(str, vectors.layers))} (every prompt "
        "and answer position); runs "
        + ", ".join(f"{value:+g}: `{stored.run_id[:12]}`" for value, stored in runs)
        + ". Shaded: 95% bootstrap band over items."
    )
    prompt_caption(results[0][1].prompt_format, results[0][1].example_prompt)
    for warning in dict.fromkeys(w for _, result in results for w in [result.notice, *result.warnings] if w):
        st.warning(warning)
    st.plotly_chart(steered_figure(results, results[0][1].strength), width="stretch", key="poisoned-steered")
    table = pd.DataFrame(
        [
            {
                "steering strength": value,
                "αβ": result.rw_fit["alpha_beta"],
                "baseline b": result.rw_fit["baseline"],
                "scale c": result.rw_fit["scale"],
                "best model": result.rw_fit["best_model"],
                **{f"poisoned rate at {p['proportion']:.0%}": p["poisoned_rate"] for p in result.points},
                "run": stored.run_id[:12],
            }
            for (value, result), (_, stored) in zip(results, runs, strict=True)
        ]
    )
    st.dataframe(table, hide_index=True, width="stretch")


def curves_tab(testbed: Testbed | None) -> None:
    if testbed is None:
        return
    describe_testbed(testbed)
    cfg, submitted, (vector_run, strengths_text) = curve_settings(testbed)
    if submitted:
        st.session_state["poisoned-requested"] = True
    if vector_run != NO_VECTOR:
        steered_curves(cfg, testbed, vector_run, strengths_text, bool(st.session_state.get("poisoned-requested")))
        return
    if st.session_state.get("poisoned-requested"):
        stored = cached_run(NAME, cfg, testbed, label="Scoring contexts")
    else:
        stored = cached_lookup(NAME, cfg, testbed)
        if stored is None:
            st.info("Press **Compute curves** to score the testbed (the defaults take seconds on the organism).")
    if stored is not None:
        show_curves(stored)


# ------------------------------------------------------------------------------------------- one context


def explore_defaults(testbed: Testbed | None) -> dict[str, str]:
    if testbed is None:
        return {"question": "", "context": "", "bad": "", "answers": ""}
    item = testbed.items[0]
    return {
        "question": item.question,
        "context": "\n".join(item.appropriate),
        "bad": "\n".join(item.inappropriate),
        "answers": f"{item.reference}\n{item.claim}",
    }


def lines(text: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def prefill_from(testbed: Testbed | None) -> None:
    """Fill the explore fields with the testbed's first item whenever the testbed changes."""
    digest = testbed.digest if testbed is not None else None
    if st.session_state.get("poisoned-x-prefilled") == digest:
        return
    st.session_state["poisoned-x-prefilled"] = digest
    for name, value in explore_defaults(testbed).items():
        st.session_state[f"poisoned-x-{name}"] = value


def explore_inputs(testbed: Testbed | None) -> tuple[ExploreInput, ExploreConfig, bool] | None:
    prefill_from(testbed)
    question = st.text_input("Question", key="poisoned-x-question")
    upload = st.file_uploader(
        CONTEXT_UPLOAD_LABEL, type=["txt"], key="poisoned-x-upload", max_upload_size=MAX_CONTEXT_BYTES // 2**20
    )
    context = st.text_area("Context segments (one per line)", key="poisoned-x-context")
    if upload is not None:
        try:
            context = decode_upload(upload.getvalue(), upload.name, MAX_CONTEXT_BYTES)
        except TestbedError as error:
            show_error(error)
            return None
    bad = st.text_area("Inappropriate segments to mix in (one per line)", key="poisoned-x-bad")
    answers = st.text_area(
        "Candidate answers (one per line: reference first, then the claim)", key="poisoned-x-answers"
    )
    left, middle, right = st.columns(3)
    n_bad = left.slider("Inappropriate segments mixed in", 0, 20, 2, key="poisoned-x-n-bad")
    position = middle.selectbox("Where", POSITIONS, key="poisoned-x-position")
    generate = right.checkbox("Generate an answer", True, key="poisoned-x-generate")
    scoring = right.selectbox(
        "Answer scoring", SCORINGS, SCORINGS.index(ExploreConfig.scoring), format_func=SCORING_LABELS.get,
        key="poisoned-x-scoring", help=SCORING_HELP,
    )  # fmt: skip
    chat_template = chat_template_select(middle, "poisoned-x-chat-template")
    submitted = st.button("Score this context", key="poisoned-x-run")
    data = ExploreInput(question.strip(), lines(context), lines(bad), lines(answers))
    cfg = ExploreConfig(
        n_inappropriate=n_bad, position=position, generate=generate, scoring=scoring, chat_template=chat_template
    )
    return data, cfg, submitted


def attribution_figure(segments: pd.DataFrame) -> go.Figure:
    colors = ["#d62728" if bad else "#1f77b4" for bad in segments["inappropriate"]]
    figure = go.Figure(
        go.Bar(
            x=segments["segment"],
            y=segments["attribution"],
            marker_color=colors,
            customdata=segments["text"],
            hovertemplate="%{customdata}<br>%{y:.3f} nats",
        )
    )
    figure.update_layout(
        title="Leave-one-out attribution per context segment (red: inappropriate)",
        xaxis={"title": "Context segment (position in the prompt)", "dtick": 1},
        yaxis_title="Change in log-odds of the claim (nats)",
    )
    return figure


def explore_tab(testbed: Testbed | None) -> None:
    chosen = explore_inputs(testbed)
    if chosen is None:
        return
    data, cfg, submitted = chosen
    if submitted:
        st.session_state["poisoned-x-requested"] = True
    if not st.session_state.get("poisoned-x-requested"):
        return
    stored = cached_run(EXPLORE_NAME, cfg, data, label="Scoring the context")
    if stored is None:
        return
    run_caption(stored)
    result = result_of(stored)
    show_coverage_warnings(result.warnings)
    winner = result.winner
    left, right = st.columns(2)
    left.metric(f"Log-odds claim vs reference ({result.scoring})", f"{result.logodds:+.3f} nats")
    right.metric("Forced choice", str(winner.role), help=str(winner.candidate))
    st.markdown(f"**Forced-choice answer:** {winner.candidate}")
    if result.generated:
        st.markdown(f"**Generated answer:** {result.generated}")
    st.dataframe(result.answers, hide_index=True, width="stretch")
    st.plotly_chart(attribution_figure(result.segments), width="stretch", key="poisoned-attribution")
    with st.expander(f"Prompt as the model read it ({result.prompt_format})"):
        st.text(result.prompt)
    export_buttons(stored, key_prefix="poisoned-x")


testbed = read_testbed()
curves, one_context = st.tabs(["Curves", "Explore one context"])
with curves:
    curves_tab(testbed)
with one_context:
    explore_tab(testbed)
