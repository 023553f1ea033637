"""Optimizer spectra (Muon vs Adam): the associative memory, a small transformer, and any loaded model's weights."""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from cache import StoredRun
from pages.common import (
    about_box,
    cached_run,
    current_spec,
    export_buttons,
    run_caption,
)
from probes.models import EMBEDDED_MODEL_NAME, ModelLoadError, ModelSpec, local_folder, local_revisions
from probes.spectra import memory, transformer, weights
from probes.wiring import result_of

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
GROUP_DASH = {"head": "solid", "middle": "dashdot", "tail": "dot", "all": "dash"}


def name(optimizer: str) -> str:
    return LABELS.get(optimizer, optimizer)


def finish(figure: go.Figure, title: str, x: str, y: str, height: int = 420) -> go.Figure:
    figure.update_layout(title=title, height=height, legend_title_text="", margin={"t": 70})
    figure.update_xaxes(title_text=x)
    figure.update_yaxes(title_text=y)
    return figure


# ---------------------------------------------------------------- associative memory


def memory_settings() -> memory.MemoryConfig:
    defaults = memory.MemoryConfig()
    with st.form("spectra-memory-form"):
        left, middle, right = st.columns(3)
        n_classes = left.number_input("Classes K", 4, 256, defaults.n_classes, key="mem_k")
        d_model = left.number_input("Embedding dimension d (≥ K; 0 = K)", 0, 512, 0, key="mem_d")
        embeddings = left.selectbox(
            "Embeddings",
            ["orthogonal", "identity"],
            key="mem_embeddings",
            help="orthonormal input/output embeddings: random orthogonal or the identity",
        )
        frequencies = middle.selectbox("Class frequencies", ["zipf", "two_group"], key="mem_frequencies")
        zipf = middle.number_input(
            "Zipf exponent α (p_k ∝ k^-α)", 0.0, 3.0, defaults.zipf_exponent, 0.1, key="mem_zipf"
        )
        ratio = middle.number_input(
            "Two groups: imbalance r (head / tail frequency)", 1.0, 1000.0, defaults.imbalance_ratio, key="mem_ratio"
        )
        steps = right.number_input("Steps", 1, 500, defaults.steps, key="mem_steps")
        batch = right.number_input("Batch size (0 = full batch)", 0, 65536, defaults.batch_size, key="mem_batch")
        eps = right.number_input(
            "ε (balance measured when the best class reaches 1 − ε)",
            0.001,
            0.9,
            defaults.eps,
            0.01,
            format="%.3f",
            key="mem_eps",
        )
        optimizers = st.multiselect(
            "Optimizers", memory.OPTIMIZERS, list(defaults.optimizers), format_func=name, key="mem_optimizers"
        )
        with st.expander("Learning rates and optimizer settings"):
            a, b, c, d = st.columns(4)
            lr_gd = a.number_input("GD lr", 0.0, 1000.0, defaults.lr_gd, key="mem_lr_gd")
            lr_signgd = b.number_input("SignGD lr", 0.0, 10.0, defaults.lr_signgd, format="%.4f", key="mem_lr_signgd")
            lr_adam = c.number_input("Adam lr", 0.0, 10.0, defaults.lr_adam, format="%.4f", key="mem_lr_adam")
            lr_muon = d.number_input("Muon lr", 0.0, 10.0, defaults.lr_muon, key="mem_lr_muon")
            momentum = a.number_input("Muon momentum", 0.0, 0.999, defaults.muon_momentum, key="mem_momentum")
            decay = b.number_input("Muon weight decay", 0.0, 1.0, defaults.muon_weight_decay, key="mem_decay")
            seed = c.number_input("Seed", 0, 2**31 - 1, defaults.seed, key="mem_seed")
        st.form_submit_button("Train the memory", type="primary")
    return memory.MemoryConfig(
        n_classes=int(n_classes),
        d_model=int(d_model) or int(n_classes),
        embeddings=embeddings,
        frequencies=frequencies,
        zipf_exponent=float(zipf),
        imbalance_ratio=float(ratio),
        steps=int(steps),
        batch_size=int(batch),
        eps=float(eps),
        optimizers=tuple(optimizers) or defaults.optimizers,
        lr_gd=float(lr_gd),
        lr_signgd=float(lr_signgd),
        lr_adam=float(lr_adam),
        lr_muon=float(lr_muon),
        muon_momentum=float(momentum),
        muon_weight_decay=float(decay),
        seed=int(seed),
    )


def memory_metrics_table(result: memory.MemoryResult) -> None:
    table = result.optimizers.copy()
    table["optimizer"] = table["optimizer"].map(name)
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            "balance": st.column_config.NumberColumn(
                "balance",
                format="%.3f",
                help="worst-class probability when the best class first reaches 1 − ε; empty when no class reached it",
            ),
            "balance_step": st.column_config.NumberColumn("step reached", format="%d"),
            **{
                c: st.column_config.NumberColumn(c, format="%.3f")
                for c in (
                    "worst_prob_final",
                    "best_prob_final",
                    "head_loss",
                    "tail_loss",
                    "loss",
                    "svd_entropy",
                    "effective_rank",
                    "top_k_energy",
                    "q75_q25",
                )
            },
        },
    )
    st.caption("Final-step values except balance. Isotropy columns describe W after the last step.")


def class_probability_figure(result: memory.MemoryResult) -> go.Figure:
    classes = result.classes
    optimizers = list(dict.fromkeys(classes["optimizer"]))
    figure = make_subplots(
        rows=1,
        cols=len(optimizers),
        shared_yaxes=True,
        subplot_titles=[name(o) for o in optimizers],
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
        figure.add_hline(y=1 - result.eps, line_dash="dash", line_color="black", row=1, col=col)
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


def group_loss_figure(result: memory.MemoryResult) -> go.Figure:
    groups = result.groups
    figure = go.Figure()
    for optimizer, part in groups.groupby("optimizer", sort=False):
        for group in ("head", "tail"):
            figure.add_trace(
                go.Scatter(
                    x=part["step"],
                    y=part[f"{group}_loss"],
                    mode="lines",
                    name=f"{name(optimizer)} · {group}",
                    line={"color": COLORS.get(optimizer), "dash": GROUP_DASH[group]},
                )
            )
    return finish(
        figure,
        "Head vs tail classes: mean per-class cross-entropy (solid head, dotted tail)",
        "step",
        "cross-entropy (nats)",
    )


def memory_spectrum_figure(result: memory.MemoryResult, step: int, matrix: str, log_y: bool) -> go.Figure:
    spectrum = result.spectrum
    part = spectrum[(spectrum["step"] == step) & (spectrum["matrix"] == matrix)]
    figure = go.Figure()
    for optimizer, line in part.groupby("optimizer", sort=False):
        figure.add_trace(
            go.Scatter(
                x=line["index"] + 1,
                y=line["singular_value"],
                mode="lines+markers",
                name=name(optimizer),
                line={"color": COLORS.get(optimizer)},
                marker={"size": 4},
            )
        )
    what = "W" if matrix == "W" else "the update W_t − W_(t−1)"
    figure = finish(
        figure,
        f"Singular values of {what} at step {step}",
        "rank of singular value (1 = largest)",
        "singular value (logit units)",
    )
    if log_y:
        figure.update_yaxes(type="log")
    return figure


def isotropy_over_training_figure(frame: pd.DataFrame, series: str, metric: str, title: str) -> go.Figure:
    figure = go.Figure()
    for key, part in frame.groupby(series, sort=False):
        figure.add_trace(
            go.Scatter(
                x=part["step"],
                y=part[metric],
                mode="lines+markers",
                name=name(key),
                line={"color": COLORS.get(key)},
                marker={"size": 4},
            )
        )
    return finish(figure, title, "step", METRIC_LABELS[metric], height=380)


def memory_section() -> None:
    st.markdown("The paper's model: **softmax(Ẽᵀ W E_k)**, W₀ = 0, heavy-tailed classes, trained side by side.")
    cfg = memory_settings()
    run = cached_run(memory.NAME, cfg, label="Training the associative memory")
    if run is None:
        return
    run_caption(run)
    result: memory.MemoryResult = result_of(run)
    memory_metrics_table(result)
    st.plotly_chart(class_probability_figure(result), width="stretch", key="mem_class_chart")
    st.plotly_chart(group_loss_figure(result), width="stretch", key="mem_group_chart")
    left, middle, right = st.columns([3, 1, 1])
    step = left.slider("Step", 0, result.steps, result.steps, key="mem_step")
    matrix = middle.radio(
        "Matrix", ["W", "update"], horizontal=True, key="mem_matrix", help="update: W_t − W_(t−1); step 0 has no update"
    )
    log_y = right.checkbox("Log scale", value=False, key="mem_log")
    if matrix == "update" and step == 0:
        st.info("Step 0 has no update; showing W (all zeros at step 0).")
        matrix = "W"
    st.plotly_chart(memory_spectrum_figure(result, step, matrix, log_y), width="stretch", key="mem_spectrum_chart")
    metric = st.selectbox("Isotropy metric", list(METRIC_LABELS), format_func=METRIC_LABELS.get, key="mem_metric")
    iso = result.isotropy
    left, right = st.columns(2)
    left.plotly_chart(
        isotropy_over_training_figure(iso[iso["matrix"] == "W"], "optimizer", metric, "Isotropy of W over training"),
        width="stretch",
        key="mem_iso_w",
    )
    right.plotly_chart(
        isotropy_over_training_figure(iso[iso["matrix"] == "update"], "optimizer", metric, "Isotropy of each update"),
        width="stretch",
        key="mem_iso_update",
    )
    export_buttons(run, key_prefix="spectra-memory")


# ---------------------------------------------------------------- small transformer


def transformer_settings() -> tuple[transformer.TransformerConfig, bool]:
    defaults = transformer.TransformerConfig()
    with st.form("spectra-transformer-form"):
        left, middle, right = st.columns(3)
        setups = left.multiselect(
            "Optimizer setups", transformer.SETUPS, list(defaults.setups), format_func=name, key="tr_setups"
        )
        steps = left.number_input("Training steps", 10, 20000, defaults.steps, 50, key="tr_steps")
        individuals = middle.number_input("Individuals", 3, 1024, defaults.n_individuals, key="tr_individuals")
        zipf = middle.number_input(
            "Zipf exponent of individual frequency", 0.0, 3.0, defaults.zipf_exponent, 0.1, key="tr_zipf"
        )
        lr_adam = right.number_input("Adam lr", 0.0, 1.0, defaults.lr_adam, format="%.4f", key="tr_lr_adam")
        lr_muon = right.number_input("Muon lr", 0.0, 1.0, defaults.lr_muon, format="%.4f", key="tr_lr_muon")
        seed = right.number_input("Seed", 0, 2**31 - 1, defaults.seed, key="tr_seed")
        submitted = st.form_submit_button("Train the transformers", type="primary")
    cfg = transformer.TransformerConfig(
        setups=tuple(setups) or defaults.setups,
        steps=int(steps),
        n_individuals=int(individuals),
        zipf_exponent=float(zipf),
        lr_adam=float(lr_adam),
        lr_muon=float(lr_muon),
        seed=int(seed),
        log_every=max(1, int(steps) // 6),
    )
    return cfg, submitted


def accuracy_figure(result: transformer.TransformerResult) -> go.Figure:
    accuracy = result.accuracy
    figure = go.Figure()
    for (setup, group), part in accuracy[accuracy["group"] != "all"].groupby(["setup", "group"], sort=False):
        figure.add_trace(
            go.Scatter(
                x=part["step"],
                y=part["accuracy"],
                mode="lines+markers",
                name=f"{name(setup)} · {group}",
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
    return figure


def transformer_spectrum_figure(result: transformer.TransformerResult, step: int, layer: int, matrix: str) -> go.Figure:
    spectrum = result.spectrum
    part = spectrum[(spectrum["step"] == step) & (spectrum["layer"] == layer) & (spectrum["matrix"] == matrix)]
    figure = go.Figure()
    for (setup, head), line in part.groupby(["setup", "head"], sort=False):
        label = name(setup) + (f" · head {head}" if head >= 0 else "")
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
    return finish(
        figure,
        f"Singular values of {matrix} in layer {layer} at step {step}",
        "rank of singular value (1 = largest)",
        "singular value",
    )


def transformer_section() -> None:
    st.markdown(
        "A CPU-sized version of the paper's experiment: facts *[first name] [last name] [relation] → [answer]* "
        "about individuals drawn with Zipf frequencies, trained with Adam, Muon, and Muon on VO+FFN only."
    )
    st.caption(
        "Scale: a 2-layer, d_model 64 transformer trained for hundreds of steps on CPU, against the paper's 160M-"
        "parameter model trained for 10k steps (published tail-group first-token accuracy: Muon 0.976, Adam 0.264, "
        "Muon on VO+FFN 0.954, Muon on QK 0.286). What this small version measured at its defaults (512 "
        "individuals, 300 steps): tail accuracy Adam 0.28, Muon 0.36, Muon on VO+FFN 0.41, with flatter W_VO "
        "spectra under Muon. Trained longer on an easier world (256 individuals, 600 steps) Adam catches up and "
        "overtakes (tail 0.93 vs 0.78): here Muon learns the tail faster; it does not reproduce the paper's "
        "end-point gap."
    )
    cfg, submitted = transformer_settings()
    run = cached_run(transformer.NAME, cfg, label="Training the small transformers", compute=submitted)
    if run is None:
        st.info("Press **Train the transformers** (about half a minute per setup on a laptop CPU).")
        return
    run_caption(run)
    result: transformer.TransformerResult = result_of(run)
    table = result.setups.copy()
    table["setup"] = table["setup"].map(name)
    st.dataframe(table, hide_index=True, width="stretch")
    st.plotly_chart(accuracy_figure(result), width="stretch", key="tr_accuracy_chart")
    iso = result.isotropy
    left, middle, right = st.columns(3)
    matrix = left.selectbox("Matrix", ["W_VO", "W_V", "W_O", "W_in", "W_out"], key="tr_matrix")
    layer = middle.selectbox("Layer", sorted(iso["layer"].unique()), key="tr_layer")
    metric = right.selectbox("Isotropy metric", list(METRIC_LABELS), format_func=METRIC_LABELS.get, key="tr_metric")
    chosen = iso[(iso["matrix"] == matrix) & (iso["layer"] == layer)]
    mean_over_heads = chosen.groupby(["setup", "step"], sort=False, as_index=False)[metric].mean()
    st.plotly_chart(
        isotropy_over_training_figure(
            mean_over_heads,
            "setup",
            metric,
            f"Isotropy of {matrix} in layer {layer} over training" + (" (mean over heads)" if matrix == "W_VO" else ""),
        ),
        width="stretch",
        key="tr_iso_chart",
    )
    steps = sorted(iso["step"].unique())
    step = st.select_slider("Step", steps, value=steps[-1], key="tr_step")
    st.plotly_chart(transformer_spectrum_figure(result, step, layer, matrix), width="stretch", key="tr_spectrum_chart")
    export_buttons(run, key_prefix="spectra-transformer")


# ---------------------------------------------------------------- any loaded model


def comparison_spec(spec: ModelSpec) -> ModelSpec | None:
    """A second model to compare with: another local revision, or any name/revision typed in."""
    try:
        folder = local_folder(ModelSpec(spec.name, None, spec.device, spec.dtype, spec.trust_remote_code))
    except ModelLoadError:
        folder = None
    revisions = local_revisions(folder) if folder is not None else []
    if revisions:
        options = ["(none)", "(final)"] + revisions
        chosen = st.selectbox("Compare with checkpoint", options, key="wt_compare_revision")
        if chosen == "(none)":
            return None
        other = ModelSpec(
            spec.name, None if chosen == "(final)" else chosen, spec.device, spec.dtype, spec.trust_remote_code
        )
        return None if other == spec else other
    left, right = st.columns(2)
    other_name = left.text_input("Compare with model (name or folder, optional)", key="wt_compare_name").strip()
    other_revision = right.text_input("Its revision (optional)", key="wt_compare_rev").strip() or None
    if not other_name and not other_revision:
        return None
    return ModelSpec(other_name or spec.name, other_revision, spec.device, spec.dtype, spec.trust_remote_code)


def model_label(run: StoredRun) -> str:
    model = "organism" if run.model_id == EMBEDDED_MODEL_NAME else run.model_id.rsplit("/", 1)[-1]
    return model + (f"@{run.revision}" if run.revision else "")


Measured = tuple[StoredRun, weights.WeightsResult]  # a stored weights run (for its model label) and its result


def layer_metric_figure(runs: list[Measured], metric: str, matrices: list[str]) -> go.Figure:
    figure = go.Figure()
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]
    for dash, (run, result) in zip(("solid", "dash"), runs, strict=False):
        metrics = result.metrics
        for color, matrix in zip(palette, matrices, strict=False):
            part = metrics[metrics["matrix"] == matrix].groupby("layer", as_index=False)[metric].mean()
            if part.empty:
                continue
            figure.add_trace(
                go.Scatter(
                    x=part["layer"],
                    y=part[metric],
                    mode="lines+markers",
                    name=f"{matrix} · {model_label(run)}",
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
    figure = go.Figure()
    for dash, (run, result) in zip(("solid", "dash"), runs, strict=False):
        spectrum = result.spectrum
        part = spectrum[(spectrum["layer"] == layer) & (spectrum["matrix"] == matrix)]
        for head, line in part.groupby("head"):
            values = line["singular_value"] / (line["singular_value"].max() if normalise else 1.0)
            label = model_label(run) + (f" · head {head}" if head >= 0 else "")
            figure.add_trace(go.Scatter(x=line["index"] + 1, y=values, mode="lines", name=label, line={"dash": dash}))
    figure = finish(
        figure,
        f"Singular values of {matrix} in layer {layer}",
        "rank of singular value (1 = largest)",
        "singular value / largest" if normalise else "singular value",
    )
    figure.update_yaxes(type="log")
    return figure


def model_section() -> None:
    spec = current_spec()
    st.markdown(
        f"Spectra of the associative-memory weights of **{spec.name}**"
        f"{' @ ' + spec.revision if spec.revision else ''} (the sidebar's model): W_V, W_O, per-head W_V W_O, "
        "the layer's summed OV map, and the MLP matrices."
    )
    other = comparison_spec(spec)
    cfg = weights.WeightsConfig()
    runs = []
    for which in [spec] + ([other] if other else []):
        run = cached_run(weights.NAME, cfg, spec=which, label=f"Measuring {which.name}")
        if run is not None:
            result: weights.WeightsResult = result_of(run)
            runs.append((run, result))
            run_caption(run)
            missing = result.missing
            if not missing.empty:
                st.warning(f"{model_label(run)}: {len(missing)} weight(s) could not be read and are left out.")
                st.dataframe(missing, hide_index=True, width="stretch")
    if not runs:
        return
    first = runs[0][1]
    available = first.matrices()
    left, right = st.columns([1, 2])
    metric = left.selectbox("Isotropy metric", list(METRIC_LABELS), format_func=METRIC_LABELS.get, key="wt_metric")
    matrices = right.multiselect("Matrices", available, available, key="wt_matrices")
    st.plotly_chart(layer_metric_figure(runs, metric, matrices), width="stretch", key="wt_layer_chart")
    left, middle, right = st.columns(3)
    layer = left.selectbox("Layer", first.layers(), key="wt_layer")
    matrix = middle.selectbox("Matrix", available, key="wt_matrix")
    normalise = right.checkbox("Divide by the largest singular value", value=True, key="wt_normalise")
    st.plotly_chart(model_spectrum_figure(runs, layer, matrix, normalise), width="stretch", key="wt_spectrum_chart")
    for index, (run, result) in enumerate(runs):
        with st.expander(f"Metrics table: {model_label(run)}"):
            st.dataframe(result.metrics, hide_index=True, width="stretch")
            export_buttons(run, key_prefix=f"spectra-weights-{index}")


# ---------------------------------------------------------------- page

st.title("Optimizer spectra: Muon vs Adam")
about_box(
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
SECTIONS = ["Associative memory", "Small transformer", "Loaded model"]
section = st.radio("View", SECTIONS, horizontal=True, key="spectra_section", label_visibility="collapsed")
if section == SECTIONS[0]:
    memory_section()
elif section == SECTIONS[1]:
    transformer_section()
else:
    model_section()
