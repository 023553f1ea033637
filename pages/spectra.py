"""Optimizer spectra (Muon vs Adam): the associative memory, a small transformer, and any loaded model's weights."""

from __future__ import annotations

import streamlit as st

from cache import StoredRun
from pages.common import (
    about_box,
    cached_run,
    current_spec,
    export_buttons,
    paper_header,
    run_caption,
)
from probes.figures import spectra as figures
from probes.models import EMBEDDED_MODEL_NAME, ModelLoadError, ModelSpec, local_folder, local_revisions
from probes.spectra import memory, transformer, weights
from probes.wiring import result_of

FINAL_COLUMNS = ("worst_prob_final", "best_prob_final", "head_loss", "tail_loss", "loss", *figures.METRIC_LABELS)


def metric_select(container, key: str) -> str:
    """The isotropy metric picker of each view."""
    labels = figures.METRIC_LABELS
    return container.selectbox("Isotropy metric", list(labels), format_func=labels.get, key=key)


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
            "Optimizers",
            memory.OPTIMIZERS,
            list(defaults.optimizers),
            format_func=figures.optimizer_label,
            key="mem_optimizers",
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
    st.dataframe(
        figures.labelled(result.optimizers, "optimizer"),
        hide_index=True,
        width="stretch",
        column_config={
            "balance": st.column_config.NumberColumn(
                "balance",
                format="%.3f",
                help="worst-class probability when the best class first reaches 1 − ε; empty when no class reached it",
            ),
            "balance_step": st.column_config.NumberColumn("step reached", format="%d"),
            **{c: st.column_config.NumberColumn(c, format="%.3f") for c in FINAL_COLUMNS},
        },
    )
    st.caption("Final-step values except balance. Isotropy columns describe W after the last step.")


def memory_section(references: dict | None) -> None:
    st.markdown("The paper's model: **softmax(Ẽᵀ W E_k)**, W₀ = 0, heavy-tailed classes, trained side by side.")
    cfg = memory_settings()
    run = cached_run(memory.NAME, cfg, label="Training the associative memory")
    if run is None:
        return
    run_caption(run)
    result: memory.MemoryResult = result_of(run)
    memory_metrics_table(result)
    classes_figure = figures.class_probability_figure(result.classes, result.eps)
    st.plotly_chart(classes_figure, width="stretch", key="mem_class_chart")
    st.plotly_chart(figures.balance_figure(result.optimizers, references), width="stretch", key="mem_balance_chart")
    st.plotly_chart(figures.group_loss_figure(result.groups), width="stretch", key="mem_group_chart")
    left, middle, right = st.columns([3, 1, 1])
    step = left.slider("Step", 0, result.steps, result.steps, key="mem_step")
    matrix = middle.radio(
        "Matrix", ["W", "update"], horizontal=True, key="mem_matrix", help="update: W_t − W_(t−1); step 0 has no update"
    )
    log_y = right.checkbox("Log scale", value=False, key="mem_log")
    if matrix == "update" and step == 0:
        st.info("Step 0 has no update; showing W (all zeros at step 0).")
        matrix = "W"
    spectrum_figure = figures.memory_spectrum_figure(result.spectrum, step, matrix, log_y)
    st.plotly_chart(spectrum_figure, width="stretch", key="mem_spectrum_chart")
    metric = metric_select(st, "mem_metric")
    iso = result.isotropy
    titles = {"W": "Isotropy of W over training", "update": "Isotropy of each update"}
    for column, (kind, title) in zip(st.columns(2), titles.items(), strict=True):
        iso_figure = figures.isotropy_over_training_figure(iso[iso["matrix"] == kind], "optimizer", metric, title)
        column.plotly_chart(iso_figure, width="stretch", key=f"mem_iso_{kind.lower()}")
    export_buttons(run, key_prefix="spectra-memory")


# ---------------------------------------------------------------- small transformer


def transformer_settings() -> tuple[transformer.TransformerConfig, bool]:
    defaults = transformer.TransformerConfig()
    with st.form("spectra-transformer-form"):
        left, middle, right = st.columns(3)
        setups = left.multiselect(
            "Optimizer setups",
            transformer.SETUPS,
            list(defaults.setups),
            format_func=figures.optimizer_label,
            key="tr_setups",
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


def transformer_section(references: dict | None) -> None:
    st.markdown(
        "A CPU-sized version of the paper's experiment: facts *[first name] [last name] [relation] → [answer]* "
        "about individuals drawn with Zipf frequencies, trained with Adam, Muon, and Muon on VO+FFN only."
    )
    st.caption(figures.transformer_scale((references or {}).get(figures.TAIL_REFERENCE)))
    cfg, submitted = transformer_settings()
    run = cached_run(transformer.NAME, cfg, label="Training the small transformers", compute=submitted)
    if run is None:
        st.info("Press **Train the transformers** (about half a minute per setup on a laptop CPU).")
        return
    run_caption(run)
    result: transformer.TransformerResult = result_of(run)
    st.dataframe(figures.labelled(result.setups, "setup"), hide_index=True, width="stretch")
    accuracy_figure = figures.accuracy_figure(result.accuracy, references)
    st.plotly_chart(accuracy_figure, width="stretch", key="tr_accuracy_chart")
    iso = result.isotropy
    left, middle, right = st.columns(3)
    matrix = left.selectbox("Matrix", ["W_VO", "W_V", "W_O", "W_in", "W_out"], key="tr_matrix")
    layer = middle.selectbox("Layer", sorted(iso["layer"].unique()), key="tr_layer")
    metric = metric_select(right, "tr_metric")
    mean_over_heads = figures.mean_over_heads(iso, matrix, layer, metric)
    title = figures.transformer_isotropy_title(matrix, layer)
    iso_figure = figures.isotropy_over_training_figure(mean_over_heads, "setup", metric, title)
    st.plotly_chart(iso_figure, width="stretch", key="tr_iso_chart")
    steps = sorted(iso["step"].unique())
    step = st.select_slider("Step", steps, value=steps[-1], key="tr_step")
    spectrum_figure = figures.transformer_spectrum_figure(result.spectrum, step, layer, matrix)
    st.plotly_chart(spectrum_figure, width="stretch", key="tr_spectrum_chart")
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
    metric = metric_select(left, "wt_metric")
    matrices = right.multiselect("Matrices", available, available, key="wt_matrices")
    named = [(model_label(run), result) for run, result in runs]
    layer_figure = figures.layer_metric_figure([(label, r.metrics) for label, r in named], metric, matrices)
    st.plotly_chart(layer_figure, width="stretch", key="wt_layer_chart")
    left, middle, right = st.columns(3)
    layer = left.selectbox("Layer", first.layers(), key="wt_layer")
    matrix = middle.selectbox("Matrix", available, key="wt_matrix")
    normalise = right.checkbox("Divide by the largest singular value", value=True, key="wt_normalise")
    spectra = [(label, r.spectrum) for label, r in named]
    spectrum_figure = figures.model_spectrum_figure(spectra, layer, matrix, normalise)
    st.plotly_chart(spectrum_figure, width="stretch", key="wt_spectrum_chart")
    for index, (run, result) in enumerate(runs):
        with st.expander(f"Metrics table: {model_label(run)}"):
            st.dataframe(result.metrics, hide_index=True, width="stretch")
            export_buttons(run, key_prefix=f"spectra-weights-{index}")


# ---------------------------------------------------------------- page


st.title("Optimizer spectra: Muon vs Adam")
about_box(*figures.ABOUT)
references = paper_header("spectra")
SECTIONS = ["Associative memory", "Small transformer", "Loaded model"]
section = st.radio("View", SECTIONS, horizontal=True, key="spectra_section", label_visibility="collapsed")
if section == SECTIONS[0]:
    memory_section(references)
elif section == SECTIONS[1]:
    transformer_section(references)
else:
    model_section()
