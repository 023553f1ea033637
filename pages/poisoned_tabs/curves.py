"""Poisoned-context page, curves tab: settings, the curves with their RW fits, and the steered curves."""

from __future__ import annotations

import streamlit as st

from pages.common import (
    background_job,
    cached_lookup,
    cached_run,
    chat_template_select,
    export_buttons,
    job_plan,
    prompt_caption,
    request_for,
    run_caption,
)
from pages.poisoned_tabs.inputs import describe_testbed, scoring_select, show_coverage_warnings
from pages.poisoned_tabs.steered import NO_VECTOR, steer_settings, steered_curves
from probes.figures.poisoned import STRENGTH_LABELS, curve_figure, logodds_figure, overweight_figure
from probes.poisoned import NAME, CurveConfig, Testbed
from probes.poisoned.contexts import POSITIONS
from probes.wiring import result_of

BACKGROUND_KEY = "poisoned-background"
BACKGROUND_ITEMS = 500  # testbeds larger than this score as a background job by default

MODEL_LABELS = {"rw": "Rescorla-Wagner", "logistic": "logistic", "proportional": "proportional", "constant": "constant"}


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
            scoring = scoring_select(st, "poisoned-scoring", defaults.scoring)
            chat_template = chat_template_select(st, "poisoned-chat-template")
            bootstrap = st.number_input("Bootstrap resamples", 0, 2000, defaults.n_bootstrap, key="poisoned-bootstrap")
            generated = st.number_input("Generated example answers", 0, 12, 0, key="poisoned-generated")
            seed = st.number_input("Seed", 0, 2**31 - 1, 0, key="poisoned-seed")
            st.checkbox(
                "Run as a background job", len(testbed.items) > BACKGROUND_ITEMS, key=BACKGROUND_KEY,
                help="In a worker process (or on the Ray cluster set in the sidebar): leaving the page or closing the "
                f"tab does not stop it. On by default for testbeds of more than {BACKGROUND_ITEMS} items.",
            )  # fmt: skip
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


def show_curves(stored, references: dict | None = None) -> None:
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
    figure = curve_figure(curve, fitted, groups, result.strength, sequential, result.best_models, references)
    st.plotly_chart(figure, width="stretch", key="poisoned-curve")
    st.plotly_chart(logodds_figure(curve, groups), width="stretch", key="poisoned-logodds")
    st.plotly_chart(overweight_figure(fitted, groups), width="stretch", key="poisoned-overweight")
    st.dataframe(fits, hide_index=True, width="stretch")
    if len(result.examples):
        st.subheader("Generated answers")
        st.dataframe(result.examples.drop(columns=["prompt"]), hide_index=True, width="stretch")
    export_buttons(stored, key_prefix="poisoned")


def curves_tab(testbed: Testbed | None, references: dict | None = None) -> None:
    if testbed is None:
        return
    describe_testbed(testbed)
    cfg, submitted, (vector_run, strengths_text) = curve_settings(testbed)
    if submitted:
        st.session_state["poisoned-requested"] = True
    if vector_run != NO_VECTOR:
        steered_curves(cfg, testbed, vector_run, strengths_text, bool(st.session_state.get("poisoned-requested")))
        return
    if st.session_state.get("poisoned-requested") and st.session_state.get(BACKGROUND_KEY):
        stored = cached_lookup(NAME, cfg, testbed)
        if stored is None:
            title = f"Poisoned-context curves ({len(testbed.items)} items, {cfg.n_items} per context)"
            background_job(job_plan(title, (request_for(NAME, cfg, testbed),)), None, "poisoned-job", start=submitted)
    elif st.session_state.get("poisoned-requested"):
        stored = cached_run(NAME, cfg, testbed, label="Scoring contexts")
    else:
        stored = cached_lookup(NAME, cfg, testbed)
        if stored is None:
            st.info("Press **Compute curves** to score the testbed (the defaults take seconds on the organism).")
    if stored is not None:
        show_curves(stored, references)
