"""Optimizer-spectra figures (Muon vs Adam): the associative memory, the small transformer, a loaded model's weights.

Pure functions of a stored run's tables ("spectra-memory": classes, groups, spectrum, isotropy, optimizers;
"spectra-transformer": accuracy, isotropy, spectrum, setups; "spectra-weights": metrics, spectrum) and plain values;
pages/spectra.py draws them, and `COMPARISONS` overlays several stored runs of each probe. The weight-matrix names
are copied here as data: `probes.spectra.weights` imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative, sample_colorscale
from plotly.subplots import make_subplots

from probes.figures import Comparison, LabelledRun
from probes.references import PUBLISHED_GROUP, Reference, hover_text, legend_name

COLORS = {
    "gd": "#7f7f7f",
    "signgd": "#ff7f0e",
    "adam": "#d62728",
    "muon": "#2ca02c",
    "muon_ns5": "#17becf",
    "muon_svd": "#9467bd",
    "muon_vo_ffn": "#1f77b4",
    "muon_qk": "#e377c2",
}
LABELS = {
    "gd": "GD",
    "signgd": "SignGD",
    "adam": "Adam",
    "muon": "Muon",
    "muon_ns5": "Muon (NS5, torch defaults)",
    "muon_svd": "Muon (exact SVD)",
    "muon_vo_ffn": "Muon on VO+FFN",
    "muon_qk": "Muon on QK",
}
METRIC_LABELS = {
    "svd_entropy": "normalised SVD entropy (0–1)",
    "effective_rank": "effective rank (count)",
    "top_k_energy": "top-k energy share (0–1)",
    "q75_q25": "Q75/Q25 singular-value ratio",
}
ABOUT = (  # the page's "About this probe" box: what it shows, the source, how it differs from the paper
    "Muon orthogonalises each update (U Vᵀ of the gradient), so every direction of a weight matrix moves at the same "
    "rate; Adam and SignGD do not. On heavy-tailed data this lets Muon learn rare (tail) classes as fast as common "
    "ones, and leaves the associative-memory matrices (VO and FFN) with a flatter, more isotropic singular spectrum. "
    "Three views: the paper's one-layer associative memory, a small transformer on heavy-tailed facts, and the "
    "spectra of any loaded model's weights.",
    "Muon Outperforms Adam in Tail-End Associative Memory Learning (ICLR 2026).",
    "Muon in the memory model is torch.optim.Muon with a convergent Newton–Schulz polynomial (2, −1.5, 0.5; 10 steps), "
    "momentum 0 and weight decay 0, which reaches U Vᵀ as in the paper's analysis (torch's default quintic NS5 gives "
    "U S′ Vᵀ and is offered as 'Muon (NS5)'; an exact-SVD variant too). Balance is empty when no class reaches "
    "1 − ε within the run. Head classes (Zipf): the most frequent classes holding half the probability mass. The "
    "small transformer is far smaller than the paper's 160M model (see its section).",
)
TRANSFORMER_SCALE = (  # the small transformer's scale against the paper's, and what it measured
    "Scale: a 2-layer, d_model 64 transformer trained for hundreds of steps on CPU, against the paper's 160M-"
    "parameter model trained for 10k steps{published}. What this small version measured at its defaults (512 "
    "individuals, 300 steps): tail accuracy Adam 0.28, Muon 0.36, Muon on VO+FFN 0.41, with flatter W_VO "
    "spectra under Muon. Trained longer on an easier world (256 individuals, 600 steps) Adam catches up and "
    "overtakes (tail 0.93 vs 0.78): here Muon learns the tail faster; it does not reproduce the paper's "
    "end-point gap."
)
GROUP_DASH = {"head": "solid", "middle": "dashdot", "tail": "dot", "all": "dash"}
MATRICES = ("W_V", "W_O", "W_VO", "W_VO_sum", "W_in", "W_gate", "W_out")  # probes.spectra.weights.MATRICES
LAYER_PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]
RUN_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")  # compared runs, in order
RUN_COLOURS = qualitative.D3
RANK_AXIS = "rank of singular value (1 = largest)"
BALANCE_REFERENCE = "muon-memory-balance"  # probes/data/references.json ids drawn here
TAIL_REFERENCE, LOSS_REFERENCE = "muon-tail-accuracy", "muon-validation-loss"
PUBLISHED_MARKER = {"symbol": "star", "size": 15, "line": {"color": "black", "width": 1.5}}


def transformer_scale(tail: Reference | None = None) -> str:
    """The small transformer's caption (`TRANSFORMER_SCALE`), quoting the paper's tail accuracy when `tail` (the
    "muon-tail-accuracy" reference) is given."""
    published = ""
    if tail is not None:
        numbers = ", ".join(f"{optimizer_label(name)} {value:.3f}" for name, value in tail.values.items())
        published = f" (published tail-group first-token accuracy: {numbers})"
    return TRANSFORMER_SCALE.format(published=published)


def optimizer_label(optimizer: str) -> str:
    """How an optimizer (memory) or optimizer setup (transformer) is named in legends and tables."""
    return LABELS.get(optimizer, optimizer)


def labelled(table: pd.DataFrame, column: str) -> pd.DataFrame:
    """A copy of `table` with the optimizer names of `column` as shown (e.g. "adam" -> "Adam")."""
    table = table.copy()
    table[column] = table[column].map(optimizer_label)
    return table


def finish(figure: go.Figure, title: str, x: str, y: str, height: int = 420) -> go.Figure:
    """Title, axis titles and the shared layout of every spectra figure."""
    figure.update_layout(title=title, height=height, legend_title_text="", margin={"t": 70})
    figure.update_xaxes(title_text=x)
    figure.update_yaxes(title_text=y)
    return figure


# ---------------------------------------------------------------- associative memory


def class_probability_figure(classes: pd.DataFrame, eps: float) -> go.Figure:
    """Every class's probability over training, one panel per optimizer, coloured by class frequency."""
    optimizers = list(dict.fromkeys(classes["optimizer"]))
    figure = make_subplots(
        rows=1,
        cols=len(optimizers),
        shared_yaxes=True,
        subplot_titles=[optimizer_label(o) for o in optimizers],
        horizontal_spacing=0.03,
    )
    log_f = classes["frequency"].map(math.log10)
    low, high = log_f.min(), log_f.max()
    for col, optimizer in enumerate(optimizers, start=1):
        part = classes[classes["optimizer"] == optimizer]
        for class_index, line in part.groupby("class_index"):
            shade = 0.5 if high == low else (math.log10(line["frequency"].iloc[0]) - low) / (high - low)
            figure.add_trace(
                go.Scatter(
                    x=line["step"],
                    y=line["probability"],
                    mode="lines",
                    showlegend=False,
                    line={"width": 1, "color": sample_colorscale("Viridis", [shade])[0]},
                    hovertemplate=f"class {class_index} (p={line['frequency'].iloc[0]:.4f})<br>step %{{x}}: %{{y:.3f}}",
                ),
                row=1,
                col=col,
            )
        figure.add_hline(y=1 - eps, line_dash="dash", line_color="black", row=1, col=col)
    figure.add_trace(
        go.Scatter(
            x=[None],
            y=[None],
            mode="markers",
            showlegend=False,
            hoverinfo="skip",
            marker={
                "colorscale": "Viridis",
                "cmin": low,
                "cmax": high,
                "color": [low],
                "colorbar": {"title": "log10 class<br>frequency"},
            },
        )
    )
    figure.update_xaxes(title_text="step")
    figure.update_yaxes(title_text="probability of the correct class", row=1, col=1)
    figure.update_layout(
        title="Per-class probability over training (colour: class frequency; dashed: 1 − ε)",
        height=420,
        margin={"t": 80},
    )
    return figure


def balance_figure(optimizers: pd.DataFrame, references: dict[str, Reference] | None = None) -> go.Figure:
    """This run's balance per optimizer as bars (no bar: no class reached 1 − ε), with the published balance of
    the same optimizers as star markers when `references` (probes.references.load_references()) is given."""
    labels = [optimizer_label(o) for o in optimizers["optimizer"]]
    balance = [_float(value) for value in optimizers["balance"]]
    figure = go.Figure(
        go.Bar(
            x=labels,
            y=balance,
            name="this run",
            marker_color=[COLORS.get(o, "#7f7f7f") for o in optimizers["optimizer"]],
            text=["never" if value is None else "" for value in balance],
            textposition="outside",
            hovertemplate="%{x}: balance %{y:.3f} (this run)<extra></extra>",
        )
    )
    if references and BALANCE_REFERENCE in references:
        add_balance_references(figure, references[BALANCE_REFERENCE])
    figure = finish(
        figure,
        "Balance per optimizer: worst-class probability when the best class first reaches 1 − ε (no bar: never)",
        "optimizer",
        "balance (worst-class probability, 0–1)",
    )
    figure.update_yaxes(range=[0, 1.1])
    return figure


def add_balance_references(figure: go.Figure, reference: Reference) -> None:
    """The published balance of each optimizer the reference names, as stars on the optimizer's category."""
    order = list(LABELS)
    names = sorted(reference.values, key=lambda name: order.index(name) if name in order else len(order))
    figure.add_scatter(
        x=[optimizer_label(name) for name in names],
        y=[reference.values[name] for name in names],
        mode="markers",
        name=legend_name(reference, "balance"),
        legendgroup=PUBLISHED_GROUP,
        legendrank=1,  # first in the legend, above this run's traces
        marker={**PUBLISHED_MARKER, "color": "white"},
        hovertext=[hover_text(reference, f"{optimizer_label(n)}: {reference.values[n]:.3f}") for n in names],
        hovertemplate="%{hovertext}<extra>published</extra>",
    )


def group_loss_figure(groups: pd.DataFrame) -> go.Figure:
    """Mean cross-entropy of the head and the tail classes over training, per optimizer."""
    figure = go.Figure()
    for optimizer, part in groups.groupby("optimizer", sort=False):
        for group in ("head", "tail"):
            figure.add_trace(
                go.Scatter(
                    x=part["step"],
                    y=part[f"{group}_loss"],
                    mode="lines",
                    name=f"{optimizer_label(optimizer)} · {group}",
                    line={"color": COLORS.get(optimizer), "dash": GROUP_DASH[group]},
                )
            )
    return finish(
        figure,
        "Head vs tail classes: mean per-class cross-entropy (solid head, dotted tail)",
        "step",
        "cross-entropy (nats)",
    )


def memory_spectrum_figure(spectrum: pd.DataFrame, step: int, matrix: str, log_y: bool) -> go.Figure:
    """Singular values of W (matrix "W") or of the update W_t − W_(t−1) ("update") at one step, per optimizer."""
    part = spectrum[(spectrum["step"] == step) & (spectrum["matrix"] == matrix)]
    figure = go.Figure()
    for optimizer, line in part.groupby("optimizer", sort=False):
        figure.add_trace(
            go.Scatter(
                x=line["index"] + 1,
                y=line["singular_value"],
                mode="lines+markers",
                name=optimizer_label(optimizer),
                line={"color": COLORS.get(optimizer)},
                marker={"size": 4},
            )
        )
    what = "W" if matrix == "W" else "the update W_t − W_(t−1)"
    figure = finish(figure, f"Singular values of {what} at step {step}", RANK_AXIS, "singular value (logit units)")
    if log_y:
        figure.update_yaxes(type="log")
    return figure


def isotropy_over_training_figure(frame: pd.DataFrame, series: str, metric: str, title: str) -> go.Figure:
    """One isotropy metric over training, one line per value of `series` (optimizer or setup)."""
    figure = go.Figure()
    for key, part in frame.groupby(series, sort=False):
        figure.add_trace(
            go.Scatter(
                x=part["step"],
                y=part[metric],
                mode="lines+markers",
                name=optimizer_label(key),
                line={"color": COLORS.get(key)},
                marker={"size": 4},
            )
        )
    return finish(figure, title, "step", METRIC_LABELS[metric], height=380)


# ---------------------------------------------------------------- small transformer


def accuracy_figure(accuracy: pd.DataFrame, references: dict[str, Reference] | None = None) -> go.Figure:
    """First-token accuracy of the head, middle and tail groups over training, per optimizer setup; with
    `references`, the paper's end-of-training tail accuracy of the same setups as stars at this run's last step."""
    figure = go.Figure()
    for (setup, group), part in accuracy[accuracy["group"] != "all"].groupby(["setup", "group"], sort=False):
        figure.add_trace(
            go.Scatter(
                x=part["step"],
                y=part["accuracy"],
                mode="lines+markers",
                name=f"{optimizer_label(setup)} · {group}",
                line={"color": COLORS.get(setup), "dash": GROUP_DASH[group]},
            )
        )
    figure = finish(
        figure,
        "First-token accuracy per frequency group (solid head, dash-dot middle, dotted tail)",
        "training step",
        "accuracy (fraction of facts)",
    )
    figure.update_yaxes(range=[0, 1.02])
    if references and TAIL_REFERENCE in references and len(accuracy):
        setups = list(dict.fromkeys(accuracy["setup"]))
        add_tail_accuracy_references(figure, references[TAIL_REFERENCE], int(accuracy["step"].max()), setups,
                                     references.get(LOSS_REFERENCE))  # fmt: skip
    return figure


def add_tail_accuracy_references(
    figure: go.Figure, reference: Reference, last_step: int, setups: list[str], loss: Reference | None = None
) -> None:
    """The published tail-group accuracy of each of `setups` the reference names, as stars (in the setup's colour)
    at `last_step`: the paper's end of training (its own step count is in the hover), not a step of this run. The
    stars stand in a short staggered column just right of the last step, so close values stay apart."""
    names = [setup for setup in setups if setup in reference.values]
    if not names:
        return
    stagger = max(last_step, 1) * 0.025
    extra = ""
    if loss is not None:
        extra = "Validation loss of the paper's runs: " + ", ".join(
            f"{optimizer_label(name)} {value:.3f}" for name, value in loss.values.items()
        )
    hover = [
        hover_text(
            reference,
            f"{optimizer_label(n)} · tail: {reference.values[n]:.3f} at the paper's end of "
            "training (drawn just right of this run's last step)",
            extra,
        )  # fmt: skip
        for n in names
    ]
    figure.add_scatter(
        x=[last_step + stagger * (index + 1) for index in range(len(names))],
        y=[reference.values[name] for name in names],
        mode="markers",
        name=legend_name(reference, "tail accuracy"),
        legendgroup=PUBLISHED_GROUP,
        legendrank=1,
        marker={**PUBLISHED_MARKER, "color": [COLORS.get(name, "#7f7f7f") for name in names]},
        hovertext=hover,
        hovertemplate="%{hovertext}<extra>published</extra>",
    )
    figure.update_layout(height=480)  # room for the legend's extra entry (it scrolls, hiding the last, at 420)


def mean_over_heads(isotropy: pd.DataFrame, matrix: str, layer: int, metric: str) -> pd.DataFrame:
    """One matrix's isotropy metric per setup and step in one layer, averaged over heads (per-head W_VO)."""
    chosen = isotropy[(isotropy["matrix"] == matrix) & (isotropy["layer"] == layer)]
    return chosen.groupby(["setup", "step"], sort=False, as_index=False)[metric].mean()


def transformer_isotropy_title(matrix: str, layer: int) -> str:
    return f"Isotropy of {matrix} in layer {layer} over training" + (" (mean over heads)" if matrix == "W_VO" else "")


def transformer_spectrum_figure(spectrum: pd.DataFrame, step: int, layer: int, matrix: str) -> go.Figure:
    """Singular values of one matrix of one layer at one step, per setup (and head, for per-head matrices)."""
    part = spectrum[(spectrum["step"] == step) & (spectrum["layer"] == layer) & (spectrum["matrix"] == matrix)]
    figure = go.Figure()
    for (setup, head), line in part.groupby(["setup", "head"], sort=False):
        label = optimizer_label(setup) + (f" · head {head}" if head >= 0 else "")
        figure.add_trace(
            go.Scatter(
                x=line["index"] + 1,
                y=line["singular_value"],
                mode="lines+markers",
                name=label,
                line={"color": COLORS.get(setup)},
                marker={"size": 4},
                opacity=1.0 if head <= 0 else 0.6,
            )
        )
    return finish(figure, f"Singular values of {matrix} in layer {layer} at step {step}", RANK_AXIS, "singular value")


# ---------------------------------------------------------------- any loaded model

Measured = tuple[str, pd.DataFrame]  # a model's label and one table of its weights run (metrics or spectrum)


def layer_metric_figure(runs: list[Measured], metric: str, matrices: list[str]) -> go.Figure:
    """One isotropy metric per layer for each chosen matrix; `runs` are (label, metrics table) of one or two models
    (solid: the first, dashed: the second)."""
    figure = go.Figure()
    for dash, (label, metrics) in zip(("solid", "dash"), runs, strict=False):
        for color, matrix in zip(LAYER_PALETTE, matrices, strict=False):
            part = metrics[metrics["matrix"] == matrix].groupby("layer", as_index=False)[metric].mean()
            if part.empty:
                continue
            figure.add_trace(
                go.Scatter(
                    x=part["layer"],
                    y=part[metric],
                    mode="lines+markers",
                    name=f"{matrix} · {label}",
                    line={"color": color, "dash": dash},
                )
            )
    figure = finish(
        figure,
        "Isotropy per layer"
        + (" (solid: first model, dashed: second)" if len(runs) > 1 else "")
        + " — W_VO is the mean over heads",
        "layer",
        METRIC_LABELS[metric],
    )
    figure.update_xaxes(dtick=1)
    return figure


def model_spectrum_figure(runs: list[Measured], layer: int, matrix: str, normalise: bool) -> go.Figure:
    """Singular values of one matrix in one layer; `runs` are (label, spectrum table) of one or two models."""
    figure = go.Figure()
    for dash, (label, spectrum) in zip(("solid", "dash"), runs, strict=False):
        part = spectrum[(spectrum["layer"] == layer) & (spectrum["matrix"] == matrix)]
        for head, line in part.groupby("head"):
            values = line["singular_value"] / (line["singular_value"].max() if normalise else 1.0)
            name = label + (f" · head {head}" if head >= 0 else "")
            figure.add_trace(go.Scatter(x=line["index"] + 1, y=values, mode="lines", name=name, line={"dash": dash}))
    figure = finish(
        figure,
        f"Singular values of {matrix} in layer {layer}",
        RANK_AXIS,
        "singular value / largest" if normalise else "singular value",
    )
    figure.update_yaxes(type="log")
    return figure


# ---------------------------------------------------------------- compared runs


def with_run(
    runs: list[LabelledRun], table: str, rows: Callable[[pd.DataFrame], pd.Series] | None = None
) -> pd.DataFrame:
    """One stored table of every run (optionally filtered by `rows(frame) -> mask`), stacked, with the run's label
    as the first column "run"."""
    frames = []
    for run in runs:
        frame = run.tables[table]
        frame = (frame[rows(frame)] if rows is not None else frame).copy()
        frame.insert(0, "run", run.label)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"run": []})


def model_name(run: LabelledRun) -> str:
    """The run's model id, with its revision when it has one."""
    return run.model_id + (f"@{run.revision}" if run.revision else "")


def run_dash(index: int) -> str:
    return RUN_DASHES[index % len(RUN_DASHES)]


def _float(value: object) -> float | None:
    """A summary number as a float, None for a missing or non-finite one."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def balance_comparison(runs: list[LabelledRun]) -> go.Figure:
    """Grouped bars: each run's balance per optimizer (no bar where no class reached 1 − ε)."""
    figure = go.Figure()
    for index, run in enumerate(runs):
        table = run.tables["optimizers"]
        figure.add_bar(
            x=[optimizer_label(o) for o in table["optimizer"]],
            y=[_float(value) for value in table["balance"]],
            name=run.label,
            marker_color=RUN_COLOURS[index % len(RUN_COLOURS)],
        )
    figure.update_layout(barmode="group")
    figure = finish(
        figure,
        "Balance per optimizer: worst-class probability when the best class first reaches 1 − ε (no bar: never)",
        "optimizer",
        "balance (worst-class probability, 0–1)",
    )
    figure.update_yaxes(range=[0, 1.02])
    return figure


def runs_by_series(
    runs: list[LabelledRun],
    rows: Callable[[LabelledRun], pd.DataFrame],
    series: str,
    y: str,
    mode: str,
    titles: tuple[str, str, str],
) -> go.Figure:
    """One line per run and series value (an optimizer or setup: colour), runs told apart by dash; y in [0, 1]."""
    figure = go.Figure()
    for index, run in enumerate(runs):
        for value, part in rows(run).groupby(series, sort=False):
            figure.add_trace(
                go.Scatter(
                    x=part["step"],
                    y=part[y],
                    mode=mode,
                    name=f"{optimizer_label(value)} · {run.label}",
                    line={"color": COLORS.get(value), "dash": run_dash(index)},
                )
            )
    figure = finish(figure, *titles)
    figure.update_yaxes(range=[0, 1.02])
    return figure


def worst_class_comparison(runs: list[LabelledRun]) -> go.Figure:
    """The worst class's probability over training per optimizer (colour) and run (dash)."""
    titles = (
        "Worst-class probability over training, runs overlaid (colour: optimizer, dash: run)",
        "step",
        "probability of the worst class (0–1)",
    )
    return runs_by_series(runs, lambda run: run.tables["groups"], "optimizer", "worst_probability", "lines", titles)


def memory_figures(runs: list[LabelledRun]) -> list[go.Figure]:
    return [balance_comparison(runs), worst_class_comparison(runs)]


def memory_headline(run: LabelledRun) -> dict[str, object]:
    """The balance threshold and each optimizer's balance (None: no class reached 1 − ε)."""
    summary = run.summary
    headline: dict[str, object] = {"ε": summary.get("eps"), "classes": summary.get("n_classes")}
    for optimizer, values in (summary.get("optimizers") or {}).items():
        headline[f"balance · {optimizer_label(optimizer)}"] = _float(values.get("balance"))
    return headline


def memory_overlaid(runs: list[LabelledRun]) -> pd.DataFrame:
    """The per-step group table of every run (worst-class probability included) with each optimizer's balance."""
    frames = []
    for run in runs:
        balance = run.tables["optimizers"][["optimizer", "balance", "balance_step"]]
        frame = run.tables["groups"].merge(balance, on="optimizer", how="left")
        frame.insert(0, "run", run.label)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"run": []})


def tail_accuracy_comparison(runs: list[LabelledRun]) -> go.Figure:
    """Tail-group first-token accuracy over training per optimizer setup (colour) and run (dash)."""

    def tail(run: LabelledRun) -> pd.DataFrame:
        accuracy = run.tables["accuracy"]
        return accuracy[accuracy["group"] == "tail"]

    titles = (
        "Tail-group first-token accuracy over training, runs overlaid (colour: optimizer setup, dash: run)",
        "training step",
        "tail-group accuracy (fraction of facts)",
    )
    return runs_by_series(runs, tail, "setup", "accuracy", "lines+markers", titles)


def transformer_figures(runs: list[LabelledRun]) -> list[go.Figure]:
    return [tail_accuracy_comparison(runs)]


def transformer_headline(run: LabelledRun) -> dict[str, object]:
    """Training steps and each setup's final tail-group accuracy."""
    headline: dict[str, object] = {"steps": run.summary.get("steps")}
    for setup, values in (run.summary.get("setups") or {}).items():
        headline[f"final tail accuracy · {optimizer_label(setup)}"] = _float(values.get("tail_accuracy"))
    return headline


def transformer_overlaid(runs: list[LabelledRun]) -> pd.DataFrame:
    return with_run(runs, "accuracy", lambda frame: frame["group"] == "tail")


def default_layer_matrix(runs: list[LabelledRun]) -> tuple[int, str] | None:
    """The spectrum the weight comparison draws: the first whole-layer matrix (in MATRICES order) that every run
    measured, in the first layer where all have it; else the first run's first; None when nothing was measured."""
    whole = [run.tables["spectrum"][run.tables["spectrum"]["head"] < 0] for run in runs]
    for matrix in MATRICES if whole else ():
        common = set.intersection(*(set(frame.loc[frame["matrix"] == matrix, "layer"]) for frame in whole))
        if common:
            return int(min(common)), matrix
    measured = [frame.sort_values(["layer", "index"]) for frame in whole if not frame.empty]
    return (int(measured[0]["layer"].iloc[0]), str(measured[0]["matrix"].iloc[0])) if measured else None


def weights_spectrum_comparison(runs: list[LabelledRun]) -> go.Figure:
    """The default layer and matrix's singular values divided by the largest, one line per run."""
    figure = go.Figure()
    chosen = default_layer_matrix(runs)
    layer, matrix = chosen if chosen is not None else (0, "W_V")
    for index, run in enumerate(runs):
        spectrum = run.tables["spectrum"]
        line = spectrum[(spectrum["layer"] == layer) & (spectrum["matrix"] == matrix) & (spectrum["head"] < 0)]
        line = line.sort_values("index")
        if line.empty:
            continue
        figure.add_trace(
            go.Scatter(
                x=line["index"] + 1,
                y=line["singular_value"] / line["singular_value"].max(),
                mode="lines",
                name=run.label,
                line={"color": RUN_COLOURS[index % len(RUN_COLOURS)]},
            )
        )
    figure = finish(
        figure,
        f"Singular values of {matrix} in layer {layer}, runs overlaid (divided by the largest)",
        RANK_AXIS,
        "singular value / largest",
    )
    figure.update_yaxes(type="log")
    return figure


def weights_entropy_comparison(runs: list[LabelledRun]) -> go.Figure:
    """Normalised SVD entropy per layer of the default matrix, one line per run."""
    figure = go.Figure()
    chosen = default_layer_matrix(runs)
    matrix = chosen[1] if chosen is not None else "W_V"
    for index, run in enumerate(runs):
        metrics = run.tables["metrics"]
        part = metrics[metrics["matrix"] == matrix].groupby("layer", as_index=False)["svd_entropy"].mean()
        if part.empty:
            continue
        figure.add_trace(
            go.Scatter(
                x=part["layer"],
                y=part["svd_entropy"],
                mode="lines+markers",
                name=run.label,
                line={"color": RUN_COLOURS[index % len(RUN_COLOURS)]},
            )
        )
    figure = finish(
        figure, f"Isotropy of {matrix} per layer, runs overlaid", "layer", METRIC_LABELS["svd_entropy"], height=380
    )
    figure.update_xaxes(dtick=1)
    return figure


def weights_figures(runs: list[LabelledRun]) -> list[go.Figure]:
    return [weights_spectrum_comparison(runs), weights_entropy_comparison(runs)]


def weights_headline(run: LabelledRun) -> dict[str, object]:
    """Model, layer count, and per matrix kind the mean normalised SVD entropy and effective rank (the summary's
    means over layers; per-head W_VO averaged over heads too)."""
    headline: dict[str, object] = {"model": model_name(run), "layers": run.summary.get("n_layers")}
    for matrix, means in (run.summary.get("matrices") or {}).items():
        headline[f"{matrix} mean entropy"] = _float(means.get("svd_entropy"))
        headline[f"{matrix} mean effective rank"] = _float(means.get("effective_rank"))
    return headline


def weights_overlaid(runs: list[LabelledRun]) -> pd.DataFrame:
    return with_run(runs, "spectrum")


COMPARISONS: dict[str, Comparison] = {
    "spectra-memory": Comparison(figures=memory_figures, headline=memory_headline, overlaid=memory_overlaid),
    "spectra-transformer": Comparison(
        figures=transformer_figures, headline=transformer_headline, overlaid=transformer_overlaid
    ),
    "spectra-weights": Comparison(figures=weights_figures, headline=weights_headline, overlaid=weights_overlaid),
}
