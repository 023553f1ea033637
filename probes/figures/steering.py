"""Associative steering (FlexAC) figures: where the direction lives, the dose-response sweep, and compared runs.

Pure functions of a stored run's tables (`per_layer` of "steering.vectors", `sweep` of "steering") and plain values;
pages/steering.py draws them, and `COMPARISONS` overlays several stored runs of the two probes. The strength-unit
names and the direction names are copied here as data: `probes.steering` imports torch.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from probes.figures import Comparison, LabelledRun
from probes.references import PUBLISHED_GROUP, Reference, hover_text

FLEXAC, RANDOM = "flexac", "random"  # the sweep table's `direction` values (probes.steering.sweep)
FLEXAC_REFERENCE = "flexac-published"  # the probes/data/references.json id drawn on the sweep figure
COLOURS = {"faithfulness": "#1f77b4", "answer_prob": "#1f77b4", "creativity": "#ff7f0e", "distinct_2": "#7f7f7f"}
UNIT_LABELS = {  # probes.steering.vectors.STRENGTH_UNITS, with what strength means in each
    "centroid": "centroid: +2 carries faithful outputs to the associative centroid",
    "residual": "residual: a multiple of the mean residual norm per layer",
    "raw": "raw: FlexAC's mean difference",
}
UNIT_HELP = (
    "centroid: the vector is calibrated on this model so that +2 moves the faithful prompts' output residual "
    "one centroid distance toward the associative set (the same meaning on every model). residual: each layer's "
    "vector is a multiple of its mean residual norm. raw: FlexAC's mean difference."
)
AXIS_UNITS = {
    "centroid": "2 = faithful output moved one centroid distance toward associative",
    "residual": "1 = each layer's vector at the chosen × mean residual norm",
    "raw": "1 = the raw mean difference",
}
ASSOCIATIVE_SET_LABELS = {  # the built-in associative sides, per kind (probes.steering.prompts.default_sets_kind)
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
ABOUT = (  # the page's "About this probe" box: what it shows, the source, how it differs from the paper
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
LAYER_AXIS = "Layer l (blocks.{l}.hook_resid_post)"
SEPARABILITY_AXIS = "Nearest-centroid accuracy (0.5 = chance)"
NORM_AXIS = "‖v_l‖ / mean ‖h_l‖ (ratio)"
RUN_COLOURS = qualitative.D3


# ------------------------------------------------------------------------------------------- one run (the page)


def per_layer_figure(table: pd.DataFrame, layers: list[int]) -> go.Figure:
    """Separability of the two prompt sets (bars, steered layers red) and the vector's relative norm per layer."""
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
        xaxis_title=LAYER_AXIS,
        xaxis={"dtick": 1},
        height=360,
        legend={"orientation": "h", "y": -0.25},
    )
    figure.update_yaxes(title_text=SEPARABILITY_AXIS, range=[0, 1.05], secondary_y=False)
    figure.update_yaxes(title_text=NORM_AXIS, secondary_y=True)
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


def strength_axis_title(unit: str) -> str:
    """The sweep's x-axis title for a vector of strength unit `unit`."""
    return f"Steering strength ({AXIS_UNITS.get(unit, 'multiple of the vector')}; negative = faithful)"


def sweep_figure(
    rows: pd.DataFrame, collapse: dict, metric: str, unit: str, references: dict[str, Reference] | None = None
) -> go.Figure:
    """Faithfulness, answer probability, creativity and distinct-2 vs strength, FlexAC and the random control; with
    `references` (probes.references.load_references()), a note of FlexAC's published changes above the plot."""
    figure = go.Figure()
    names = {
        "faithfulness": "faithfulness (fact accuracy)",
        "answer_prob": "answer probability",
        "creativity": f"creativity ({metric})",
        "distinct_2": "distinct-2",
    }
    for direction, dash in ((FLEXAC, "solid"), (RANDOM, "dash")):
        part = rows[rows["direction"] == direction].sort_values("strength")
        label = "FlexAC" if direction == FLEXAC else "random (matched norm)"
        for column, title in names.items():
            if column == "answer_prob" and direction == RANDOM:
                continue  # the random vector's faithfulness line already shows it is harmless
            figure.add_scatter(
                x=part["strength"],
                y=part[column],
                mode="lines+markers",
                name=f"{title} · {label}",
                line={"color": COLOURS[column], "dash": "dot" if column == "answer_prob" else dash},
            )
    for side in ("positive", "negative"):
        strength = collapse.get(FLEXAC, {}).get(side)
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
        xaxis_title=strength_axis_title(unit),
        yaxis_title="Metric value (share, 0-1)",
        yaxis_range=[-0.02, 1.02],
        height=460,
        legend={"orientation": "h", "y": -0.3},
    )
    if references and FLEXAC_REFERENCE in references:
        add_flexac_note(figure, references[FLEXAC_REFERENCE])
    return figure


def flexac_note_text(reference: Reference) -> str:
    """FlexAC's published changes in words, from the reference's values."""
    values = reference.values
    parts = []
    if "creativity_gain_max" in values:
        parts.append(f"creativity up to {values['creativity_gain_max']:g}× (Creation-MMBench)")
    if "hallucination_reduction_percent" in values:
        parts.append(f"{values['hallucination_reduction_percent']:g}% fewer hallucinations (CHAIR)")
    return f"Published ({reference.citation.short}, multimodal): " + ", ".join(parts)


def add_flexac_note(figure: go.Figure, reference: Reference) -> None:
    """FlexAC's published changes as a boxed note between the title and the plot (not on the axes: the paper's
    benchmarks and strengths are not this sweep's), with the source on hover."""
    text = flexac_note_text(reference)
    figure.add_annotation(
        name=f"{PUBLISHED_GROUP}:{reference.id}",
        text=text + " · not on these axes",
        x=0,
        y=1.0,
        xref="paper",
        yref="paper",
        xanchor="left",
        yanchor="bottom",
        yshift=26,  # above the collapse labels at the plot's top edge
        showarrow=False,
        align="left",
        font={"size": 12, "color": "#222222"},
        bgcolor="rgba(255, 255, 255, 0.9)",
        bordercolor="#222222",
        borderwidth=1,
        hovertext=hover_text(reference, text, "Not comparable with this sweep's metrics or strengths."),
    )
    figure.update_layout(margin={"t": 130})


def sets_caption(sets) -> str:
    """How many prompts, facts and associative words a prompt set (a `PromptSets`) holds, and where from."""
    return (
        f"{len(sets.faithful)} faithful and {len(sets.associative)} associative prompts, "
        f"{len(sets.facts)} facts and {len(sets.associative_words)} associative words from {sets.source}."
    )


def coverage_reminder(share_known: float) -> str:
    """The warning above a sweep whose prompt sets the tokenizer mostly cannot read."""
    return (
        f"Only {share_known:.0%} of the prompt sets' words are known to this model's tokenizer "
        "(see the warning above): this sweep mostly measures the unknown token."
    )


def parse_strengths(text: str) -> tuple[float, ...]:
    """Comma-separated sweep strengths; a ValueError with the message the page shows when one is not a number."""
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ValueError(f"Sweep strengths must be numbers separated by commas, got {text!r}.") from None


def grid(low: float, high: float, step: float) -> tuple[float, ...]:
    """Every strength from `low` to `high` in steps of `step` (the slider's values)."""
    return tuple(low + step * i for i in range(int((high - low) / step) + 1))


def generation_caption(row: pd.Series) -> str:
    """The metrics under one ladder generation."""
    return f"associative share {row['associative_share']:.2f} · distinct-2 {row['distinct_2']:.2f}"


def sweep_caption(collapse: dict, n_facts: int, metric: str, max_new_tokens: int, ratio: float) -> str:
    """What the sweep measured and where (if anywhere) the text collapsed; `collapse` is one direction's."""
    marks = [f"{side} side at {collapse[side]:+g}" for side in ("negative", "positive") if collapse[side] is not None]
    return (
        f"Faithfulness: greedy exact-match accuracy on {n_facts} facts (teacher-forced). Creativity: "
        f"{metric} of {max_new_tokens}-token greedy continuations. "
        f"Collapse (distinct-2 < {ratio:g} × its value at 0): {', '.join(marks) if marks else 'none in this range'}."
    )


# ------------------------------------------------------------------------------------------- compared runs


def model_name(run: LabelledRun) -> str:
    """The run's model id, with its revision when it has one."""
    return run.model_id + (f"@{run.revision}" if run.revision else "")


def layers_text(layers: object) -> str:
    return ", ".join(str(int(layer)) for layer in layers or ())


def sweep_unit(run: LabelledRun) -> str:
    """A sweep run's strength unit ("centroid", "residual", "raw"), or "" when its summary names none."""
    return str((run.summary.get("strength_unit") or {}).get("unit", ""))


def compared_strength_axis(runs: list[LabelledRun]) -> str:
    """The x-axis title of overlaid sweeps: the shared unit, or each run's own when they differ."""
    units = {run.label: sweep_unit(run) for run in runs}
    if len(set(units.values())) <= 1:
        return strength_axis_title(next(iter(units.values()), ""))
    each = "; ".join(
        f"{label}: {AXIS_UNITS.get(unit, unit or 'multiple of the vector')}" for label, unit in units.items()
    )
    return f"Steering strength, each run in its own unit ({each}; negative = faithful)"


def dose_response_comparison(runs: list[LabelledRun], metric: str = "faithfulness") -> go.Figure:
    """`metric` ("faithfulness" or "creativity") vs strength, one solid line per run (FlexAC vector) and, where the
    run's table has it, its matched-norm random control dotted in the same colour."""
    figure = go.Figure()
    for index, run in enumerate(runs):
        rows = run.tables["sweep"]
        colour = RUN_COLOURS[index % len(RUN_COLOURS)]
        for direction, dash, what in ((FLEXAC, "solid", "FlexAC"), (RANDOM, "dot", "random (matched norm)")):
            part = rows[rows["direction"] == direction].sort_values("strength")
            if part.empty:
                continue
            figure.add_scatter(
                x=part["strength"],
                y=part[metric],
                mode="lines+markers",
                name=f"{run.label} · {what}",
                legendgroup=run.label,
                line={"color": colour, "dash": dash},
            )
    if metric == "faithfulness":
        title = "Dose-response of the compared runs: faithfulness vs steering strength (dotted: random vector)"
        y_title = "Faithfulness: exact-match fact accuracy (share, 0-1)"
    else:
        measured = sorted({str(run.summary.get("creativity_metric", metric)) for run in runs})
        title = "Dose-response of the compared runs: creativity vs steering strength (dotted: random vector)"
        y_title = f"Creativity: {' / '.join(measured) or metric} (share, 0-1)"
    figure.update_layout(
        title=title,
        xaxis_title=compared_strength_axis(runs),
        yaxis_title=y_title,
        yaxis_range=[-0.02, 1.02],
        height=460,
        legend={"orientation": "h", "y": -0.3},
    )
    return figure


def sweep_figures(runs: list[LabelledRun]) -> list[go.Figure]:
    return [dose_response_comparison(runs, "faithfulness"), dose_response_comparison(runs, "creativity")]


def _value(part: pd.DataFrame, column: str) -> float | None:
    return float(part[column].iloc[0]) if not part.empty else None


def sweep_headline(run: LabelledRun) -> dict[str, object]:
    """Model, layers, unit; faithfulness at the lowest, zero and highest strength of the FlexAC vector, creativity at
    the highest, and the collapse strengths the run recorded (None: no collapse in its range)."""
    rows = run.tables["sweep"]
    flexac = rows[rows["direction"] == FLEXAC].sort_values("strength")
    lowest, highest = flexac.head(1), flexac.tail(1)
    collapse = (run.summary.get("collapse") or {}).get(FLEXAC) or {}
    return {
        "model": model_name(run),
        "layers": layers_text(run.summary.get("layers")),
        "strength unit": sweep_unit(run),
        "lowest strength": _value(lowest, "strength"),
        "faithfulness at lowest": _value(lowest, "faithfulness"),
        "faithfulness at 0": _value(flexac[flexac["strength"] == 0], "faithfulness"),
        "highest strength": _value(highest, "strength"),
        "faithfulness at highest": _value(highest, "faithfulness"),
        "creativity at highest": _value(highest, "creativity"),
        "collapse (negative side)": collapse.get("negative"),
        "collapse (positive side)": collapse.get("positive"),
    }


def with_run(runs: list[LabelledRun], table: str) -> pd.DataFrame:
    """One stored table of every run, stacked, with the run's label as the first column "run"."""
    frames = []
    for run in runs:
        frame = run.tables[table].copy()
        frame.insert(0, "run", run.label)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"run": []})


def sweep_overlaid(runs: list[LabelledRun]) -> pd.DataFrame:
    return with_run(runs, "sweep")


def per_layer_comparison(runs: list[LabelledRun], column: str = "relative_norm") -> go.Figure:
    """One per-layer column of the vector runs ("relative_norm" or "separability"), one line per run; the layers a
    run steers get large markers."""
    figure = go.Figure()
    for index, run in enumerate(runs):
        table = run.tables["per_layer"].sort_values("layer")
        steered = table["layer"].isin([int(layer) for layer in run.summary.get("layers") or ()])
        figure.add_scatter(
            x=table["layer"],
            y=table[column],
            mode="lines+markers",
            name=run.label,
            line={"color": RUN_COLOURS[index % len(RUN_COLOURS)]},
            marker={"size": [12 if s else 6 for s in steered]},
        )
    if column == "separability":
        title = "Separability of the two prompt sets per layer, runs overlaid (large markers: steered layers)"
        figure.update_yaxes(range=[0, 1.05])
    else:
        title = "Steering vector norm per layer relative to the residual norm, runs overlaid (large markers: steered)"
    figure.update_layout(
        title=title,
        xaxis_title=LAYER_AXIS,
        xaxis={"dtick": 1},
        yaxis_title=SEPARABILITY_AXIS if column == "separability" else NORM_AXIS,
        height=400,
        legend={"orientation": "h", "y": -0.25},
    )
    return figure


def vector_figures(runs: list[LabelledRun]) -> list[go.Figure]:
    return [per_layer_comparison(runs, "relative_norm"), per_layer_comparison(runs, "separability")]


def vector_headline(run: LabelledRun) -> dict[str, object]:
    """Model, steering layers, strength unit, pairing and the number of prompt pairs the mean difference kept."""
    summary = run.summary
    return {
        "model": model_name(run),
        "layers": layers_text(summary.get("layers")),
        "strength unit": summary.get("unit", ""),
        "pairing": summary.get("pairing", ""),
        "pairs kept": summary.get("n_pairs_kept"),
    }


def vector_overlaid(runs: list[LabelledRun]) -> pd.DataFrame:
    return with_run(runs, "per_layer")


COMPARISONS: dict[str, Comparison] = {
    "steering": Comparison(figures=sweep_figures, headline=sweep_headline, overlaid=sweep_overlaid),
    "steering.vectors": Comparison(figures=vector_figures, headline=vector_headline, overlaid=vector_overlaid),
}
