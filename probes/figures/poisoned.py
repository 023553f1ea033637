"""Poisoned-context figures (pages/poisoned.py and the compare view): curves of the poisoned rate against the share of
inappropriate items, with their Rescorla-Wagner fits, mean log-odds, over-weighting and leave-one-out attribution.

Every function takes a stored run's tables (`CurveResult.to_tables()`: curve, fits, fitted, scores, examples;
`ExploreResult.to_tables()`: segments, answers) or parts of them, and plain values. Nothing here imports the probe
itself (`probes.poisoned` imports torch): the fitted RW curves come from the run's `fitted` table.

`COMPARISONS` overlays several runs of the curve probe ("poisoned") or of the one-context probe ("poisoned-explore").
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from probes.figures import Comparison, LabelledRun
from probes.references import PUBLISHED_GROUP, Reference, hover_text, legend_name

CURVE_PROBE = "poisoned"  # probes.poisoned.NAME
EXPLORE_PROBE = "poisoned-explore"  # probes.poisoned.EXPLORE_NAME
ALL = "all"  # the curve of every item (probes.poisoned.probe.ALL)
DEFAULT_STRENGTH = "poisoned_rate"
STRENGTH_LABELS = {"poisoned_rate": "Poisoned rate", "choice_probability": "Mean choice probability of the claim"}
CURVE_TITLE = "Poisoned-context curve: {strength} vs share of inappropriate items"
STEERED_TITLE = "Poisoned-context curves under steering: {strength} vs share of inappropriate items"
COMPARE_TITLE = "Poisoned-context curves compared: {strength} vs share of inappropriate items"
LOGODDS_TITLE = "Mean log-odds of the claim over the reference answer"
COMPARE_LOGODDS_TITLE = LOGODDS_TITLE + ", runs compared"
ATTRIBUTION_TITLE = "Leave-one-out attribution per context segment (red: inappropriate)"
COMPARE_ATTRIBUTION_TITLE = "Leave-one-out attribution per context segment, runs compared (hatched: inappropriate)"
SHARE_AXIS = "Share of inappropriate items in the context (%)"
LOGODDS_AXIS = "log P(claim) − log P(reference) (nats)"
SEGMENT_AXIS = "Context segment (position in the prompt)"
ATTRIBUTION_AXIS = "Change in log-odds of the claim (nats)"
RATE_RANGE = [-0.02, 1.02]
BEST_MARK = " ★ best (AICc)"
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
BAD_COLOR, GOOD_COLOR = "#d62728", "#1f77b4"
RUN_COLUMNS = ["run", "model_id", "revision"]  # what the overlaid tables prepend to each run's rows
CURVE_REFERENCE = "rw-qwen2-curve"  # probes/data/references.json ids drawn here
QUALITY_REFERENCE, FAKENEWS_REFERENCE = "rw-steering-quality", "rw-steering-fakenews"
PUBLISHED_COLOR = "#222222"
JUDGE_NOTE = "The paper's measure is an LLM-judge score, not this page's forced choice by log-probability."
QUALITY_AXIS = "Published response quality (0–100, right axis)"
QUALITY_NOTE = (
    "Response quality 0–100 from the paper (LLM judge), on the right axis: not comparable in scale with the "
    "poisoned rate on the left."
)


def color(index: int) -> str:
    """The index-th colour of the palette (cycled)."""
    return COLORS[index % len(COLORS)]


def strength_axis(strength: str) -> str:
    """The y-axis title of a curve of `strength` (poisoned_rate or choice_probability)."""
    return f"{STRENGTH_LABELS[strength]} (0–1)"


def group_rows(table: pd.DataFrame, category: str, position: str) -> pd.DataFrame:
    """The rows of one (category, position) of a curve or fitted table."""
    return table[(table["category"] == category) & (table["position"] == position)]


def main_rows(table: pd.DataFrame, position: str | None = None) -> pd.DataFrame:
    """The "all"-category rows of a curve or fitted table at `position` (default: the table's first position, the
    one a run's summary describes)."""
    if position is None:
        positions = table.loc[table["category"] == ALL, "position"]
        if positions.empty:
            return table.iloc[0:0]
        position = positions.iloc[0]
    return group_rows(table, ALL, position)


# ------------------------------------------------------------------------------------------------ one run


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
    references: dict[str, Reference] | None = None,
) -> go.Figure:
    """Measured strength with its band, the bounded RW and logistic fits and the fitted proportional line; the
    legend marks each group's best model by AICc. The fits are bounded to [0, 1], so they stay inside the y range.
    With `references` (probes.references.load_references()), the paper's Qwen2 curve is drawn too."""
    figure = go.Figure()
    for index, (category, position) in enumerate(groups):
        hue = color(index)
        label = f"{category} · {position}"
        winner = (best or {}).get((category, position))
        rows = group_rows(curve, category, position)
        fine = group_rows(fitted, category, position)
        add_measured_curve(figure, rows, label, hue)
        figure.add_scatter(
            x=fine["proportion"] * 100,
            y=fine["fitted"],
            mode="lines",
            name=f"{label} RW fit" + BEST_MARK * (winner == "rw"),
            line={"color": hue, "dash": "dash"},
        )
        if "logistic" in fine:
            figure.add_scatter(
                x=fine["proportion"] * 100,
                y=fine["logistic"],
                mode="lines",
                name=f"{label} logistic fit" + BEST_MARK * (winner == "logistic"),
                line={"color": hue, "dash": "longdash", "width": 1.5},
            )
        if sequential:
            figure.add_scatter(
                x=rows["proportion"] * 100,
                y=rows["rw_sequential"],
                mode="lines",
                name=f"{label} sequential RW",
                line={"color": hue, "dash": "dashdot"},
            )
        figure.add_scatter(
            x=fine["proportion"] * 100,
            y=fine["proportional"],
            mode="lines",
            name=f"{label} proportional fit" + BEST_MARK * (winner == "proportional"),
            line={"color": hue, "dash": "dot", "width": 1},
        )
    figure.update_layout(
        title=CURVE_TITLE.format(strength=STRENGTH_LABELS[strength].lower()),
        xaxis_title=SHARE_AXIS,
        yaxis_title=strength_axis(strength),
        yaxis_range=RATE_RANGE,
    )
    if references and CURVE_REFERENCE in references:
        add_published_curve(figure, references[CURVE_REFERENCE])
    return figure


def add_published_curve(figure: go.Figure, reference: Reference) -> None:
    """The paper's association strength per share (in %, drawn as a share 0–1 on the curve's y axis), one dotted
    line of diamonds per published series."""
    approx = "~" if reference.read_off_figure else ""
    for series, points in reference.points.items():
        figure.add_scatter(
            x=[x for x, _ in points],
            y=[y / 100 for _, y in points],
            mode="markers+lines",
            name=legend_name(reference, f"{series.title()}{', read off' * reference.read_off_figure} (LLM judge)"),
            legendgroup=PUBLISHED_GROUP,
            legendrank=1,
            line={"color": PUBLISHED_COLOR, "dash": "dot", "width": 1},
            marker={"symbol": "diamond", "size": 10, "color": "white", "line": {"color": PUBLISHED_COLOR, "width": 2}},
            hovertext=[
                hover_text(
                    reference, f"{series.title()}: association strength {approx}{y:g}% at {x:g}% share", JUDGE_NOTE
                )
                for x, y in points
            ],
            hovertemplate="%{hovertext}<extra>published</extra>",
        )


def add_logodds_curve(figure: go.Figure, rows: pd.DataFrame, label: str, color: str) -> None:
    """Mean log-odds per share, with its 95% bootstrap interval as error bars when it has one."""
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
        name=label,
        line={"color": color},
        error_y=error if rows["mean_logodds_low"].notna().all() else None,
    )


def _logodds_layout(figure: go.Figure, title: str, legend_title: str | None = None) -> go.Figure:
    figure.add_hline(y=0, line={"color": "grey", "dash": "dot"})
    figure.update_layout(title=title, xaxis_title=SHARE_AXIS, yaxis_title=LOGODDS_AXIS)
    if legend_title:
        figure.update_layout(legend_title=legend_title)
    return figure


def logodds_figure(curve: pd.DataFrame, groups: list[tuple[str, str]]) -> go.Figure:
    """Mean log-odds of the claim over the reference answer per share, one line per (category, position)."""
    figure = go.Figure()
    for index, (category, position) in enumerate(groups):
        add_logodds_curve(figure, group_rows(curve, category, position), f"{category} · {position}", color(index))
    return _logodds_layout(figure, LOGODDS_TITLE)


def overweight_figure(fitted: pd.DataFrame, groups: list[tuple[str, str]]) -> go.Figure:
    """The RW fit minus its proportional line per share: how much the less prevalent content is over-weighted."""
    figure = go.Figure()
    for index, (category, position) in enumerate(groups):
        fine = group_rows(fitted, category, position)
        figure.add_scatter(
            x=fine["proportion"] * 100,
            y=fine["overweight"],
            mode="lines",
            name=f"{category} · {position}",
            line={"color": color(index)},
        )
    figure.add_hline(y=0, line={"color": "grey", "dash": "dot"})
    figure.update_layout(
        title="Over-weighting of the less prevalent content (RW fit minus its proportional line)",
        xaxis_title=SHARE_AXIS,
        yaxis_title="RW fit − (b + (c − b)·p) (0–1 scale)",
    )
    return figure


def attribution_figure(segments: pd.DataFrame) -> go.Figure:
    """Leave-one-out attribution of each context segment (a `segments` table), inappropriate ones in red."""
    colors = [BAD_COLOR if bad else GOOD_COLOR for bad in segments["inappropriate"]]
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
        title=ATTRIBUTION_TITLE,
        xaxis={"title": SEGMENT_AXIS, "dtick": 1},
        yaxis_title=ATTRIBUTION_AXIS,
    )
    return figure


# ------------------------------------------------------------------------------------------- overlaid curves


FIT_COLUMNS = {"rw": "fitted", "logistic": "logistic", "proportional": "proportional"}  # model -> `fitted` column
FIT_NAMES = {"rw": "RW fit", "logistic": "logistic fit", "proportional": "proportional fit", "constant": "constant fit"}


def best_fit_rows(fitted: pd.DataFrame, fits: pd.DataFrame, position: str | None = None) -> tuple[pd.DataFrame, str]:
    """The best-fitting model's curve (by AICc) of all items at a position, as rows with a `fitted` column, and its
    name ("logistic fit"): drawn instead of the RW fit when another model describes the curve better."""
    rows = main_rows(fitted, position)
    fit = main_rows(fits, position)
    best = str(fit["best_model"].iloc[0]) if len(fit) and "best_model" in fit else "rw"
    if best == "constant":
        return rows.assign(fitted=float(fit["const_b"].iloc[0])), FIT_NAMES[best]
    return rows.assign(fitted=rows[FIT_COLUMNS.get(best, "fitted")]), FIT_NAMES.get(best, "RW fit")


def overlay_curves_figure(
    curves: list[tuple[str, pd.DataFrame, pd.DataFrame | None] | tuple[str, pd.DataFrame, pd.DataFrame | None, str]],
    title: str,
    *,
    strength: str = DEFAULT_STRENGTH,
    legend_title: str | None = None,
) -> go.Figure:
    """Several labelled curves on one axis, one colour each: (label, curve rows, fitted rows or None).

    The curve rows are one group of a `curve` table (usually `main_rows(curve)`: all items at the first position);
    their `strength` column is drawn with its 95% bootstrap band (`strength_low`/`strength_high`, when present).
    The fitted rows (the same group of the `fitted` table) add the RW fit as a dashed line of the same colour (an
    optional fourth element names another fitted model, e.g. from `best_fit_rows`).
    `strength` names what the curves measure (the y-axis title); the legend is titled `legend_title`."""
    figure = go.Figure()
    for index, (label, rows, fit, *named) in enumerate(curves):
        hue = color(index)
        add_measured_curve(figure, rows, label, hue)
        if fit is not None and len(fit):
            figure.add_scatter(
                x=fit["proportion"] * 100,
                y=fit["fitted"],
                mode="lines",
                name=f"{label} {named[0] if named else 'RW fit'}",
                line={"color": hue, "dash": "dash"},
            )
    figure.update_layout(
        title=title,
        xaxis_title=SHARE_AXIS,
        yaxis_title=strength_axis(strength),
        yaxis_range=RATE_RANGE,
    )
    if legend_title:
        figure.update_layout(legend_title=legend_title)
    return figure


def overlay_logodds_figure(curves: list[tuple[str, pd.DataFrame]], title: str = COMPARE_LOGODDS_TITLE) -> go.Figure:
    """Several labelled mean log-odds curves (label, curve rows) on one axis, one colour each."""
    figure = go.Figure()
    for index, (label, rows) in enumerate(curves):
        add_logodds_curve(figure, rows, label, color(index))
    return _logodds_layout(figure, title, "Run")


def steering_label(value: float) -> str:
    return f"strength {value:+g}" if value else "strength 0 (unsteered)"


def steered_figure(runs: list[tuple[float, pd.DataFrame, str]], strength: str) -> go.Figure:
    """One curve per steering strength (value, its run's curve table, the run's first position): all items, with the
    95% bootstrap band."""
    curves = [(steering_label(value), main_rows(curve, position), None) for value, curve, position in runs]
    return overlay_curves_figure(
        curves,
        STEERED_TITLE.format(strength=STRENGTH_LABELS[strength].lower()),
        strength=strength,
        legend_title="Steering strength (vector units)",
    )


# ------------------------------------------------------------------------------------------- compare runs


def _table(run: LabelledRun, name: str) -> pd.DataFrame:
    if name not in run.tables:
        raise ValueError(f"Run {run.label} ({run.run_id[:12]}) has no {name!r} table to compare.")
    return run.tables[name]


def run_strength(run: LabelledRun) -> str:
    """What the run's RW model fitted: poisoned_rate or choice_probability."""
    return str(run.summary.get("strength") or run.config.get("strength") or DEFAULT_STRENGTH)


def run_position(run: LabelledRun) -> str | None:
    """The run's first position setting (the one its summary describes); None: the curve table's first."""
    return run.summary.get("position")


def as_poisoned_rate(rows: pd.DataFrame) -> pd.DataFrame:
    """Curve rows whose strength columns are replaced by the poisoned rate and its band."""
    return rows.assign(
        strength=rows["poisoned_rate"],
        strength_low=rows["poisoned_rate_low"],
        strength_high=rows["poisoned_rate_high"],
    )


def compare_curves_figure(runs: list[LabelledRun]) -> go.Figure:
    """The runs' curves (all items, each run's first position) overlaid with their bands and each run's best-fitting
    model (AICc) dashed.

    Drawn: the strength the runs' RW models fitted when they all fitted the same (the poisoned rate by default);
    otherwise the poisoned rate of every run, with the RW fit only for the runs that fitted it."""
    measures = {run_strength(run) for run in runs}
    strength = measures.pop() if len(measures) == 1 else DEFAULT_STRENGTH
    curves = []
    for run in runs:
        rows = main_rows(_table(run, "curve"), run_position(run))
        fit, name = best_fit_rows(_table(run, "fitted"), _table(run, "fits"), run_position(run))
        if run_strength(run) != strength:
            rows, fit = as_poisoned_rate(rows), None
        curves.append((run.label, rows, fit, name))
    title = COMPARE_TITLE.format(strength=STRENGTH_LABELS[strength].lower())
    return overlay_curves_figure(curves, title, strength=strength, legend_title="Run")


def compare_logodds_figure(runs: list[LabelledRun]) -> go.Figure:
    """The runs' mean log-odds per share (all items, each run's first position) overlaid."""
    return overlay_logodds_figure([(run.label, main_rows(_table(run, "curve"), run_position(run))) for run in runs])


def curve_figures(runs: list[LabelledRun]) -> list[go.Figure]:
    return [compare_curves_figure(runs), compare_logodds_figure(runs)]


def _rate_near(points: list[dict], share: float) -> tuple[float | None, float | None]:
    """(share, poisoned rate) of the point whose share is closest to `share` (the lower one on a tie)."""
    if not points:
        return None, None
    point = min(points, key=lambda p: abs(float(p["proportion"]) - share))
    return float(point["proportion"]), float(point["poisoned_rate"])


def curve_headline(run: LabelledRun) -> dict[str, object]:
    """A curve run's headline numbers, from its summary (all items at the first position)."""
    summary, fit = run.summary, run.summary.get("rw_fit", {})
    steer = summary.get("steer") or {}
    points = summary.get("points", [])
    best = fit.get("best_model")
    best_r2 = (fit.get("models") or {}).get(best, {}).get("r2", fit.get("r2") if best == "rw" else None)
    middle, middle_rate = _rate_near(points, 0.5)
    return {
        "model": run.model_id,
        "revision": run.revision,
        "scoring": summary.get("scoring"),
        "steering strength": float(steer.get("strength", 0.0)),
        "steering vector": str(steer.get("vector_digest", ""))[:12] or "none",
        "poisoned rate at 0%": _rate_near(points, 0.0)[1],
        "share near 50%": middle,
        "poisoned rate near 50%": middle_rate,
        "poisoned rate at 100%": _rate_near(points, 1.0)[1],
        "best model (AICc)": best,
        "R² of the best model": best_r2,
        "αβ": fit.get("alpha_beta"),
    }


def _with_run(run: LabelledRun, table: pd.DataFrame) -> pd.DataFrame:
    labels = pd.DataFrame({"run": run.label, "model_id": run.model_id, "revision": run.revision}, index=table.index)
    return pd.concat([labels, table], axis=1)


def _stacked(runs: list[LabelledRun], name: str) -> pd.DataFrame:
    blocks = [_with_run(run, _table(run, name)) for run in runs]
    return pd.concat(blocks, ignore_index=True) if blocks else pd.DataFrame(columns=RUN_COLUMNS)


def curve_overlaid(runs: list[LabelledRun]) -> pd.DataFrame:
    """The runs' curve tables, one block of rows per run, with its run label, model id and revision."""
    return _stacked(runs, "curve")


def compare_attribution_figure(runs: list[LabelledRun]) -> go.Figure:
    """The runs' leave-one-out attributions per segment as grouped bars, one colour per run, inappropriate hatched."""
    figure = go.Figure()
    for index, run in enumerate(runs):
        segments = _table(run, "segments")
        figure.add_bar(
            x=segments["segment"],
            y=segments["attribution"],
            name=run.label,
            marker={
                "color": color(index),
                "pattern": {"shape": ["/" if bad else "" for bad in segments["inappropriate"]]},
            },
            customdata=segments["text"],
            hovertemplate="%{customdata}<br>%{y:.3f} nats",
        )
    figure.update_layout(
        title=COMPARE_ATTRIBUTION_TITLE,
        xaxis={"title": SEGMENT_AXIS, "dtick": 1},
        yaxis_title=ATTRIBUTION_AXIS,
        barmode="group",
        legend_title="Run",
    )
    return figure


def explore_figures(runs: list[LabelledRun]) -> list[go.Figure]:
    return [compare_attribution_figure(runs)]


def explore_headline(run: LabelledRun) -> dict[str, object]:
    """A one-context run's headline numbers, from its summary."""
    return {
        "model": run.model_id,
        "revision": run.revision,
        "scoring": run.summary.get("scoring"),
        "answer log-odds (nats)": run.summary.get("logodds"),
        "forced choice": run.summary.get("winner"),
    }


def explore_overlaid(runs: list[LabelledRun]) -> pd.DataFrame:
    """The runs' segment tables, one block of rows per run, with its run label, model id and revision."""
    return _stacked(runs, "segments")


COMPARISONS: dict[str, Comparison] = {
    CURVE_PROBE: Comparison(figures=curve_figures, headline=curve_headline, overlaid=curve_overlaid),
    EXPLORE_PROBE: Comparison(figures=explore_figures, headline=explore_headline, overlaid=explore_overlaid),
}


# ---------------------------------------------------------------------------------------------- mitigation

MITIGATION_TITLE = "Held-out poisoned rate before and after RW-Steering fine-tuning"


def mitigation_figure(
    before: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
    after: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
    references: dict[str, Reference] | None = None,
) -> go.Figure:
    """The base model's and the tuned model's held-out curves on one axis, each with its best-fitting model dashed:
    each side is (curve table, fitted table, fits table). With `references`, the paper's response quality before
    and after RW-Steering on a second y axis (0–100, right)."""
    figure = overlay_curves_figure(
        [
            ("before (base model)", main_rows(before[0]), *best_fit_rows(before[1], before[2])),
            ("after RW-Steering (judges first)", main_rows(after[0]), *best_fit_rows(after[1], after[2])),
        ],
        MITIGATION_TITLE,
        legend_title="Model",
    )
    if references and QUALITY_REFERENCE in references:
        add_quality_references(figure, references[QUALITY_REFERENCE], references.get(FAKENEWS_REFERENCE))
    return figure


def add_quality_references(figure: go.Figure, reference: Reference, fakenews: Reference | None = None) -> None:
    """The paper's response quality per share on a right-hand axis (0–100): each published series as squares, each
    published band (RW-Steering: the same range at every ratio) as a shaded strip over the series' shares."""
    shares = sorted({x for points in reference.points.values() for x, _ in points}) or [0.0, 100.0]
    for series, points in reference.points.items():
        figure.add_scatter(
            x=[x for x, _ in points],
            y=[y for _, y in points],
            mode="markers+lines",
            yaxis="y2",
            name=legend_name(reference, f"{series} quality (right axis)"),
            legendgroup=PUBLISHED_GROUP,
            line={"color": PUBLISHED_COLOR, "dash": "dot", "width": 1},
            marker={"symbol": "square", "size": 9, "color": "white", "line": {"color": PUBLISHED_COLOR, "width": 2}},
            hovertext=[
                hover_text(reference, f"{series}: quality {y:g} at {x:g}% inappropriate", QUALITY_NOTE)
                for x, y in points
            ],  # fmt: skip
            hovertemplate="%{hovertext}<extra>published</extra>",
        )
    extra = ""
    if fakenews is not None:
        extra = f"{fakenews.what}: " + ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in fakenews.values.items())
    for band, (low, high) in reference.bands.items():
        label = band.replace("_", "-").title().replace("Rw-", "RW-")
        figure.add_scatter(
            x=[shares[0], shares[-1], shares[-1], shares[0], shares[0]],
            y=[low, low, high, high, low],
            mode="lines",
            fill="toself",
            yaxis="y2",
            name=legend_name(reference, f"{label} quality {low:g}–{high:g} (right axis)"),
            legendgroup=PUBLISHED_GROUP,
            line={"color": "#2ca02c", "width": 1},
            fillcolor="rgba(44, 160, 44, 0.2)",
            hoveron="fills+points",
            hovertext=hover_text(reference, f"{label}: quality {low:g}–{high:g} at every share", QUALITY_NOTE, extra),
            hovertemplate="%{hovertext}<extra>published</extra>",
        )
    figure.update_layout(
        yaxis2={"title": QUALITY_AXIS, "overlaying": "y", "side": "right", "range": [-2, 102], "showgrid": False},
        legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0},
        margin={"b": 160},
    )


def tuning_loss_figure(history: pd.DataFrame) -> go.Figure:
    """Training loss per optimizer step, one colour per stage (loss on the judgement and answer tokens only)."""
    figure = go.Figure()
    for stage, rows in history.groupby("stage", sort=True):
        figure.add_scatter(
            x=rows["step"], y=rows["loss"], mode="lines", name=f"stage {stage}", line={"color": color(int(stage) - 1)}
        )
    figure.update_layout(
        title="RW-Steering fine-tuning loss",
        xaxis_title="Optimizer step",
        yaxis_title="Cross-entropy on the target tokens (nats per token)",
    )
    return figure
