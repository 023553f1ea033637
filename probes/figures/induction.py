"""Induction-head figures (pages/induction.py and the compare view): the scan's heatmaps and loss curve, one head's
attention on text, the emergence training curves, the checkpoint sweep, the page's "About this probe" text, and
`COMPARISONS` for the "induction" scan and "induction-emergence" training runs.

Pure: DataFrames and plain values in, Plotly figures out. Nothing from `probes.induction` is imported (every module
there imports torch), so the few numbers the figures need from it (the phase threshold, the head count, the step
count) arrive as parameters or from a stored run's summary and config.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from probes.figures import Comparison, LabelledRun

SCORE_TITLES = {
    "induction": "Induction score per head",
    "previous_token": "Previous-token score per head",
    "duplicate_token": "Duplicate-token score per head",
    "copying": "Copying score per head (OV circuit)",
}
SCORE_HELP = {
    "induction": "mean attention from each repeated token to the token after its earlier copy (i-T+1)",
    "previous_token": "mean attention from each repeated token to the token before it (i-1)",
    "duplicate_token": "mean attention from each repeated token to its earlier copy (i-T)",
    "copying": "sum(λ)/sum(|λ|) of the eigenvalues of W_E W_V W_O W_U: 1 copies the attended token, -1 suppresses it",
}
EMERGENCE_CHART_TITLE = "Emergence: training curves (live)"
PHASE_METRIC_LABELS = {"layer_induction_total": "best-layer total induction attention",
                       "icl_accuracy": "ICL accuracy"}  # fmt: skip
FINAL = "final"  # label of a run without a revision (the end of training), as probes.induction.sweep.FINAL
COLOURS = qualitative.Plotly
COMPARE_COLUMNS = 4  # score grids per row in the side-by-side comparison
PHASE_REFERENCE = "olsson-phase-change"  # the probes/data/references.json id drawn on the emergence figure
PUBLISHED_GROUP = "published"  # as probes.references.PUBLISHED_GROUP (this module imports only probes.figures)


def about_text(repeat_threshold: float, bursty_threshold: float) -> tuple[str, str, str]:
    """The induction page's "About this probe" box: (what the figures show, sources, deviations from the papers).
    Quotes the phase thresholds of the repeat and bursty tasks (`probes.induction.emergence.PHASE_THRESHOLDS`)."""
    what = (
        "An **induction head** completes patterns `[A][B] … [A] → [B]`: at the second `[A]` it attends to the token "
        "after the first `[A]` and copies it. **Scan** feeds repeated random tokens and, from one batched forward "
        "pass, scores every head by its mean attention from each second-half token to the token after its earlier "
        "copy (induction), to the previous token, and to the earlier copy itself (duplicate); the loss drop on the "
        "repeated half is the in-context-learning score. **Emergence** trains a 2-layer attention-only model and "
        "shows the abrupt phase change; **Checkpoint sweep** finds when heads form during real training."
    )
    source = (
        "Olsson et al. 2022, In-context Learning and Induction Heads; Reddy 2023 (bursty in-context classification); "
        "METHODS.md section 1."
    )
    deviations = (
        "Random tokens are drawn without replacement within a sequence (no accidental repeats). Copying score: "
        "Elhage et al.'s sum(λ)/sum(|λ|) of the full OV circuit with layer norms folded. Phase change: step ending "
        "the steepest rise of the 3-record moving average of the best layer's total induction attention (the "
        "induction scores of one layer's heads summed, so copying split over several heads counts; ICL accuracy for "
        f"the bursty task), none if it never reaches {repeat_threshold} ({bursty_threshold} ICL accuracy). A "
        "per-head score misses copying split over heads: with the defaults, seed 1 ends with its top head at 0.44 "
        "while its layer-1 total is 1.32 and the repeated half costs a tenth of the first half's loss, so the chart "
        "shows the top head, the layer total and the loss ratio. Adam lr 3e-3 instead of 1e-3 for the repeat task "
        "(shorter plateau). The repeat task varies the half-length T' in [T/2, T] per training batch so a fixed "
        "positional offset cannot fake an induction head. Bursty task: novel-class sequences are always bursty; "
        "labels are random vectors; position is a one-hot code."
    )
    return what, source, deviations


# --- the scan --------------------------------------------------------------------------------------------


def head_heatmap(frame: pd.DataFrame, score: str) -> go.Figure:
    """One score per (layer, head) of a scan's head_scores table, with invisible click targets on the cells."""
    matrix = frame.pivot(index="layer", columns="head", values=score)
    diverging = score == "copying"
    figure = go.Figure(go.Heatmap(
        z=matrix.values, x=matrix.columns, y=matrix.index, colorscale="RdBu" if diverging else "Viridis",
        zmin=-1 if diverging else 0, zmax=1, colorbar={"title": "score"},
        hovertemplate="layer %{y}, head %{x}<br>score %{z:.4f}<extra></extra>",
    ))  # fmt: skip
    layers, heads = np.meshgrid(matrix.index, matrix.columns, indexing="ij")
    figure.add_scatter(
        x=heads.ravel(),
        y=layers.ravel(),
        mode="markers",
        showlegend=False,
        hoverinfo="skip",
        marker={"size": 18, "symbol": "square", "opacity": 0.0},
    )  # click targets (heatmaps have none)
    figure.update_layout(title=SCORE_TITLES[score], height=320, margin={"t": 50, "b": 40})
    figure.update_xaxes(title="Head", dtick=1)
    figure.update_yaxes(title="Layer", dtick=1, autorange="reversed")
    return figure


def loss_figure(losses: pd.DataFrame, seq_len: int) -> go.Figure:
    """Per-token loss of a scan's loss_by_position table, the repeat's start marked."""
    figure = go.Figure()
    for half, colour in (("first", "#888888"), ("first repeated token", "#d62728"), ("second", "#1f77b4")):
        part = losses[losses.half == half]
        figure.add_scatter(x=part.token_index, y=part.loss, mode="lines+markers", name=f"{half} half"
                           if "half" not in half else half, line={"color": colour}, marker={"size": 4})  # fmt: skip
    figure.add_vline(x=seq_len + 0.5, line_dash="dot", annotation_text="repeat starts")
    figure.update_layout(title="Per-token loss on repeated random tokens", height=340, margin={"t": 50})
    figure.update_xaxes(title="Token position in the sequence (BOS excluded)")
    figure.update_yaxes(title="Loss (nats)", rangemode="tozero")
    return figure


def attention_figure(frame: pd.DataFrame, tokens: list[str], layer: int, head: int) -> go.Figure:
    """One head's attention pattern on text (query, key, attention, induction_target rows), targets outlined."""
    labels = [f"{index}: {token}" for index, token in enumerate(tokens)]
    matrix = np.full((len(tokens), len(tokens)), np.nan)
    matrix[frame["query"], frame["key"]] = frame["attention"]
    figure = go.Figure(go.Heatmap(
        z=matrix, x=labels, y=labels, colorscale="Blues", zmin=0, zmax=1, colorbar={"title": "attention"},
        hovertemplate="query %{y}<br>key %{x}<br>attention %{z:.3f}<extra></extra>",
    ))  # fmt: skip
    targets = frame[frame.induction_target]
    figure.add_scatter(x=[labels[k] for k in targets["key"]], y=[labels[q] for q in targets["query"]], mode="markers",
                       marker={"symbol": "square-open", "size": 12, "color": "#d62728"},
                       name="induction target", hoverinfo="skip")  # fmt: skip
    figure.update_layout(title=f"Attention pattern of L{layer}H{head} on your text", height=560,
                         legend={"orientation": "h", "y": -0.25})  # fmt: skip
    figure.update_xaxes(title="Key token (attended to)", tickangle=-60)
    figure.update_yaxes(title="Query token (attending)", autorange="reversed")
    return figure


# --- emergence -------------------------------------------------------------------------------------------


def emergence_figure(
    history: pd.DataFrame,
    task: str,
    phase_step: int | None,
    steps: int,
    n_heads: int,
    threshold: float,
    references: dict | None = None,
) -> go.Figure:
    """The training curves of one emergence run (`history`: one row per record), the phase change marked.

    steps: the run's training steps (the x range); n_heads: heads per layer; threshold: the repeat task's phase
    threshold on the best-layer total (`probes.induction.emergence.PHASE_THRESHOLDS["repeat"]`); references: the
    published references by id (`probes.references.load_references()`), or None to draw none."""
    if task == "repeat":
        figure = repeat_emergence_figure(history, n_heads, threshold)
    else:
        figure = bursty_emergence_figure(history)
    if phase_step is not None:
        figure.add_vline(x=phase_step, line_dash="dash", line_color="#d62728", row="all", col=1)
        figure.add_annotation(x=phase_step, y=1, xref="x", yref="y domain", text=f"phase change (step {phase_step})",
                              showarrow=False, xanchor="left", yanchor="top", font={"color": "#d62728"})  # fmt: skip
    figure.update_layout(title=EMERGENCE_CHART_TITLE, legend={"orientation": "h", "y": -0.12})
    figure.update_xaxes(range=[0, steps])
    figure.update_xaxes(title="Training step", row=3 if task == "repeat" else 2, col=1)
    if references and PHASE_REFERENCE in references:
        add_phase_change_note(figure, references[PHASE_REFERENCE])
    return figure


def add_phase_change_note(figure: go.Figure, reference) -> None:
    """Olsson et al.'s finding as a boxed note above the plots, at no step: the paper's phase change happened at a
    point of its own training runs that has no counterpart in this run, so placing it on the x axis would fake a
    number. `reference` is a probes.references.Reference (duck-typed: this module imports only probes.figures)."""
    values = reference.values
    icl = ""
    if {"icl_late_token", "icl_early_token"} <= set(values):
        icl = (f"In-context-learning score there: loss at token {values['icl_late_token']:g} minus loss at token "
               f"{values['icl_early_token']:g}.")  # fmt: skip
    hover = [reference.what, icl, reference.setting, reference.source(), reference.note]
    figure.add_annotation(
        name=f"{PUBLISHED_GROUP}:{reference.id}",
        text=f"{reference.citation.short}: phase change · induction heads form abruptly, early in training, with a "
        "jump in in-context learning (published finding; no step of this run)",
        x=0, y=1.0, xref="paper", yref="paper", xanchor="left", yanchor="bottom", yshift=34, showarrow=False,
        align="left", font={"size": 12, "color": "#222222"}, bgcolor="rgba(255, 255, 255, 0.9)",
        bordercolor="#222222", borderwidth=1,
        hovertext="<br>".join(re.sub(r"(.{64,}?) ", r"\1<br>", part) for part in hover if part),
    )  # fmt: skip
    figure.update_layout(margin={"t": 130})


def repeat_emergence_figure(history: pd.DataFrame, n_heads: int, threshold: float) -> go.Figure:
    """Loss per half; top head vs best-layer total induction attention; the loss ratio."""
    figure = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.09, row_heights=[0.3, 0.4, 0.3],
                           subplot_titles=("Loss on each half of the repeated sequence",
                                           f"Induction attention: top head (0-1) vs best layer (sum over its "
                                           f"{n_heads} heads, 0-{n_heads})",
                                           "Loss ratio: repeated half / first half (1 = no copying)"))  # fmt: skip
    figure.add_scatter(x=history.step, y=history.loss, name="loss on repeated half", mode="lines+markers",
                       row=1, col=1)  # fmt: skip
    figure.add_scatter(x=history.step, y=history.first_half_loss, name="loss on first half", mode="lines",
                       line={"dash": "dot"}, row=1, col=1)  # fmt: skip
    figure.add_scatter(x=history.step, y=history.induction_score, name="top-head induction score",
                       mode="lines+markers", row=2, col=1)  # fmt: skip
    figure.add_scatter(x=history.step, y=history.layer_induction_total, name="best-layer total induction",
                       customdata=history.best_layer, mode="lines+markers", line={"width": 3}, row=2, col=1,
                       hovertemplate="step %{x}<br>layer %{customdata}: %{y:.3f}<extra></extra>")  # fmt: skip
    figure.add_hline(y=threshold, line_dash="dot", line_color="#888888", annotation_text="phase threshold",
                     row=2, col=1)  # fmt: skip
    figure.add_scatter(x=history.step, y=history.previous_token_score, name="top-head previous-token score",
                       mode="lines", line={"dash": "dot"}, row=2, col=1)  # fmt: skip
    figure.add_scatter(x=history.step, y=history.loss_ratio, name="loss ratio", mode="lines+markers", row=3, col=1)
    figure.update_layout(height=720)
    figure.update_yaxes(title="Loss (nats)", rangemode="tozero", row=1, col=1)
    top = max(1.0, float(history.layer_induction_total.max()))
    figure.update_yaxes(title="Attention mass (probability)", range=[0, 1.05 * top], row=2, col=1)
    figure.update_yaxes(title="Ratio (unitless)", rangemode="tozero", row=3, col=1)
    return figure


def bursty_emergence_figure(history: pd.DataFrame) -> go.Figure:
    """Held-out loss; attention scores and ICL / IWL / flipped-label accuracies."""
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                           subplot_titles=("Loss on a held-out training batch", "Scores and accuracies"))  # fmt: skip
    figure.add_scatter(x=history.step, y=history.loss, name="loss", mode="lines+markers", row=1, col=1)
    for name in ("induction_score", "previous_token_score", "icl_accuracy", "iwl_accuracy", "flipped_accuracy"):
        figure.add_scatter(x=history.step, y=history[name], name=name.replace("_", " "), mode="lines+markers",
                           row=2, col=1)  # fmt: skip
    figure.update_layout(height=560)
    figure.update_yaxes(title="Loss (nats)", row=1, col=1)
    figure.update_yaxes(title="Score / accuracy (0-1)", range=[0, 1.02], row=2, col=1)
    return figure


# --- checkpoint sweep ------------------------------------------------------------------------------------


def sweep_figure(frame: pd.DataFrame) -> go.Figure:
    """Best induction score and the two half losses per checkpoint (`probes.induction.sweep.sweep_frame`); x is the
    training step when every checkpoint has one, else the revision name."""
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    by_step = bool(frame.step.notna().all())
    x = frame.step if by_step else frame.revision
    figure.add_scatter(x=x, y=frame.best_induction, name="best induction score", mode="lines+markers",
                       hovertext=frame.revision, secondary_y=False)  # fmt: skip
    figure.add_scatter(x=x, y=frame.second_half_loss, name="loss on repeated half", mode="lines+markers",
                       line={"dash": "dot"}, secondary_y=True)  # fmt: skip
    figure.add_scatter(x=x, y=frame.first_half_loss, name="loss on first half", mode="lines+markers",
                       line={"dash": "dash"}, secondary_y=True)  # fmt: skip
    figure.update_layout(title="Best induction score and loss vs training step", height=420)
    figure.update_xaxes(title="Training step" if by_step else "Checkpoint")
    figure.update_yaxes(title="Best induction score (0-1)", range=[0, 1.02], secondary_y=False)
    figure.update_yaxes(title="Loss (nats)", rangemode="tozero", secondary_y=True)
    return figure


# --- comparing scan runs ("induction") -------------------------------------------------------------------


def checkpoint_step(revision: str | None) -> int | None:
    """The training step a revision name carries ('step1000', 'step-1000' -> 1000); None for the final model or a
    name without digits (the rule of `probes.induction.sweep.revision_step`: the last run of digits)."""
    digits = re.findall(r"\d+", revision) if revision else []
    return int(digits[-1]) if digits else None


def _head_scores(run: LabelledRun) -> pd.DataFrame:
    return run.tables["head_scores"].sort_values(["layer", "head"], kind="stable").reset_index(drop=True)


def _top_head(heads: pd.DataFrame) -> tuple[int, int, float]:
    """(layer, head, induction score) of the highest-scoring head; the first in (layer, head) order on ties."""
    row = heads.iloc[int(np.nanargmax(heads["induction"].to_numpy(float)))]
    return int(row["layer"]), int(row["head"]), float(row["induction"])


def score_grids_figure(runs: list[LabelledRun]) -> go.Figure:
    """The induction score grids (layer x head) of the runs side by side, on one colour scale (0-1)."""
    cols = min(len(runs), COMPARE_COLUMNS)
    rows = math.ceil(len(runs) / cols)
    figure = make_subplots(rows=rows, cols=cols, subplot_titles=[run.label for run in runs], horizontal_spacing=0.06,
                           vertical_spacing=0.3 / rows)  # fmt: skip
    for index, run in enumerate(runs):
        matrix = _head_scores(run).pivot(index="layer", columns="head", values="induction")
        row, col = index // cols + 1, index % cols + 1
        figure.add_trace(go.Heatmap(z=matrix.values, x=matrix.columns, y=matrix.index, coloraxis="coloraxis",
                                    name=run.label, hovertemplate=f"{run.label}<br>layer %{{y}}, head %{{x}}"
                                    "<br>score %{z:.4f}<extra></extra>"), row=row, col=col)  # fmt: skip
        figure.update_xaxes(title="Head", dtick=1, row=row, col=col)
        figure.update_yaxes(title="Layer" if col == 1 else None, dtick=1, autorange="reversed", row=row, col=col)
    figure.update_layout(title=f"{SCORE_TITLES['induction']}, by run", height=120 + 300 * rows,
                         coloraxis={"colorscale": "Viridis", "cmin": 0, "cmax": 1,
                                    "colorbar": {"title": "induction score (0-1)"}})  # fmt: skip
    return figure


def spans_checkpoints(runs: list[LabelledRun]) -> bool:
    """True when some model has runs at two or more different training steps (parsed from the revision names)."""
    steps: dict[str, set[int]] = {}
    for run in runs:
        if (step := checkpoint_step(run.revision)) is not None:
            steps.setdefault(run.model_id, set()).add(step)
    return any(len(found) > 1 for found in steps.values())


def checkpoint_curve_figure(runs: list[LabelledRun]) -> go.Figure:
    """Top induction score vs training step, one line per model, points in step order. Runs whose revision names
    no step (the final model) cannot be placed and are named in a note under the plot."""
    figure = go.Figure()
    models = list(dict.fromkeys(run.model_id for run in runs))
    unplaced = [run.label for run in runs if checkpoint_step(run.revision) is None]
    for index, model in enumerate(models):
        points = sorted(((checkpoint_step(run.revision), _top_head(_head_scores(run)), run) for run in runs
                         if run.model_id == model and checkpoint_step(run.revision) is not None),
                        key=lambda point: point[0])  # fmt: skip
        if not points:
            continue
        figure.add_scatter(
            x=[step for step, _, _ in points], y=[top[2] for _, top, _ in points], mode="lines+markers", name=model,
            line={"color": COLOURS[index % len(COLOURS)]},
            customdata=[[run.label, run.revision, f"L{top[0]}H{top[1]}"] for _, top, run in points],
            hovertemplate="%{customdata[0]} (%{customdata[1]})<br>step %{x}<br>top head %{customdata[2]}: "
            "%{y:.3f}<extra></extra>",
        )  # fmt: skip
    if unplaced:
        figure.add_annotation(text="Not on the curve (no step in the revision name): " + ", ".join(unplaced),
                              xref="paper", yref="paper", x=0, y=-0.22, showarrow=False, xanchor="left")  # fmt: skip
    figure.update_layout(title="Top induction score vs training step", height=420, legend={"title": "model"})
    figure.update_xaxes(title="Training step (from the revision name)")
    figure.update_yaxes(title="Top induction score (0-1)", range=[0, 1.02])
    return figure


def top_score_bars_figure(runs: list[LabelledRun]) -> go.Figure:
    """Top induction score per run, the top head written on each bar."""
    tops = [_top_head(_head_scores(run)) for run in runs]
    figure = go.Figure(go.Bar(
        x=[run.label for run in runs], y=[top[2] for top in tops], text=[f"L{top[0]}H{top[1]}" for top in tops],
        textposition="outside", customdata=[[run.model_id, run.revision or FINAL] for run in runs],
        hovertemplate="%{x}<br>%{customdata[0]} (%{customdata[1]})<br>top head %{text}: %{y:.3f}<extra></extra>",
    ))  # fmt: skip
    figure.update_layout(title="Top induction score per run", height=420)
    figure.update_xaxes(title="Run")
    figure.update_yaxes(title="Top induction score (0-1)", range=[0, 1.1])
    return figure


def scan_figures(runs: list[LabelledRun]) -> list[go.Figure]:
    """The score grids side by side, then the per-checkpoint curve when the runs span checkpoints of a model, else
    the top score per run."""
    if not runs:
        return []
    second = checkpoint_curve_figure(runs) if spans_checkpoints(runs) else top_score_bars_figure(runs)
    return [score_grids_figure(runs), second]


def scan_headline(run: LabelledRun) -> dict[str, object]:
    """Model, revision, top head, its induction (and previous-token) score, the mean induction score, ICL score."""
    heads = _head_scores(run)
    layer, head, score = _top_head(heads)
    headline: dict[str, object] = {
        "model": run.model_id,
        "revision": run.revision or FINAL,
        "top head": f"L{layer}H{head}",
        "top induction score": score,
        "mean induction score": float(np.nanmean(heads["induction"].to_numpy(float))),
    }
    if "previous_token" in heads.columns:
        top = heads[(heads["layer"] == layer) & (heads["head"] == head)]
        headline["top head previous-token score"] = float(top["previous_token"].iloc[0])
    if run.summary.get("icl_score") is not None:
        headline["ICL score (nats)"] = float(run.summary["icl_score"])
    return headline


def scan_overlaid(runs: list[LabelledRun]) -> pd.DataFrame:
    """Every run's head_scores rows, with run (label), model_id, revision and the step parsed from the revision."""
    blocks = [_head_scores(run).assign(run=run.label, model_id=run.model_id, revision=run.revision) for run in runs]
    if not blocks:
        return pd.DataFrame(columns=["run", "model_id", "revision", "step", "layer", "head", "induction"])
    frame = pd.concat(blocks, ignore_index=True)
    frame["step"] = pd.array([checkpoint_step(revision) for revision in frame["revision"]], dtype="Int64")
    first = ["run", "model_id", "revision", "step"]
    return frame[first + [column for column in frame.columns if column not in first]]


# --- comparing training runs ("induction-emergence") -----------------------------------------------------


def _attention_column(history: pd.DataFrame) -> str:
    """The repeat task's best-layer total when recorded, else (bursty) the top head's induction attention."""
    return "layer_induction_total" if "layer_induction_total" in history.columns else "induction_score"


def training_curves_figure(runs: list[LabelledRun]) -> go.Figure:
    """Loss and induction attention vs step, one colour per run, each run's phase change a dotted line."""
    titles = ("Loss (repeat: repeated half; bursty: held-out batch)",
              "Induction attention (repeat: best-layer total; bursty: top head)")  # fmt: skip
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.1, subplot_titles=titles)
    for index, run in enumerate(runs):
        history = run.tables["history"]
        colour = COLOURS[index % len(COLOURS)]
        common = {"legendgroup": run.label, "line": {"color": colour}, "mode": "lines+markers"}
        figure.add_scatter(x=history.step, y=history.loss, name=run.label, row=1, col=1, **common)
        figure.add_scatter(x=history.step, y=history[_attention_column(history)], name=run.label, showlegend=False,
                           row=2, col=1, **common)  # fmt: skip
        phase = run.summary.get("phase_change_step")
        if phase is not None:
            figure.add_vline(x=phase, line_dash="dot", line_color=colour, row="all", col=1)
    columns = {_attention_column(run.tables["history"]) for run in runs}
    attention_title = {
        frozenset({"layer_induction_total"}): "Best-layer total induction (sum over heads)",
        frozenset({"induction_score"}): "Top-head induction attention (0-1)",
    }.get(frozenset(columns), "Induction attention (probability mass)")
    figure.update_layout(title="Emergence: training curves by run", height=620, legend={"title": "run"})
    figure.update_yaxes(title="Loss (nats)", rangemode="tozero", row=1, col=1)
    figure.update_yaxes(title=attention_title, rangemode="tozero", row=2, col=1)
    figure.update_xaxes(title="Training step", row=2, col=1)
    return figure


def emergence_figures(runs: list[LabelledRun]) -> list[go.Figure]:
    return [training_curves_figure(runs)] if runs else []


def emergence_headline(run: LabelledRun) -> dict[str, object]:
    """Task, phase change step, and the last record's step, loss and induction scores (the summary's `final`)."""
    final = run.summary.get("final") or run.tables["history"].iloc[-1].to_dict()
    headline: dict[str, object] = {
        "task": run.summary.get("task"),
        "phase change step": run.summary.get("phase_change_step"),
        "final step": int(final["step"]),
        "final loss (nats)": float(final["loss"]),
        "top-head induction score": float(final["induction_score"]),
    }
    for key, name in (("layer_induction_total", "best-layer total induction"), ("loss_ratio", "loss ratio"),
                      ("icl_accuracy", "ICL accuracy")):  # fmt: skip
        if final.get(key) is not None:
            headline[name] = float(final[key])
    return headline


def emergence_overlaid(runs: list[LabelledRun]) -> pd.DataFrame:
    """Every run's history rows with a run column (the label) in front."""
    blocks = [run.tables["history"].assign(run=run.label) for run in runs]
    if not blocks:
        return pd.DataFrame(columns=["run", "step"])
    frame = pd.concat(blocks, ignore_index=True)
    return frame[["run"] + [column for column in frame.columns if column != "run"]]


COMPARISONS: dict[str, Comparison] = {
    "induction": Comparison(figures=scan_figures, headline=scan_headline, overlaid=scan_overlaid),
    "induction-emergence": Comparison(
        figures=emergence_figures, headline=emergence_headline, overlaid=emergence_overlaid
    ),
}
