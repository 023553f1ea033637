"""Poisoned-context page, Mitigate tab: RW-Steering fine-tuning, and the held-out curves before and after it."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages.common import USER_ERRORS, background_job, current_spec, get_store, job_plan, show_error
from probes import wiring
from probes.figures.poisoned import mitigation_figure, tuning_loss_figure
from probes.poisoned import CurveConfig, Testbed
from probes.poisoned.contexts import POSITIONS
from probes.poisoned.mitigate import METHODS, MitigateConfig, before_after
from probes.wiring import result_of

EXPLANATION = (
    "**RW-Steering** (the paper's cure) fine-tunes the model in two stages to first judge its context, then answer: "
    "targets read *Reliable items: 1, 3, 4.* followed by the reference answer. Stage 1 trains on contexts with every "
    "share of inappropriate items, stage 2 adds contexts with only a few. The testbed's questions are split into "
    "train and held-out sets with a fixed seed; the curves below are measured on the held-out items only, before "
    "(the base model) and after (the tuned model writes its judgement, then the answers are scored after it). The "
    "tuned model is saved as a revision of this model, so every page can load it from the sidebar. Scored by the "
    "plain summed log-probability: calibration would subtract the answer the tuned model gives from its own "
    "knowledge. Small models are fine-tuned in full (the organism: about a minute on 2 CPU cores), larger ones "
    "with LoRA (peft)."
)


def mitigate_settings() -> tuple[MitigateConfig, CurveConfig, bool]:
    tuning, curve = MitigateConfig(), CurveConfig()
    with st.form("mitigate-settings"):
        left, middle, right = st.columns(3)
        n_items = left.slider("Items per context (n)", 2, 40, tuning.n_items, key="mitigate-n-items")
        held_out = left.slider(
            "Held-out share of questions", 0.1, 0.5, tuning.held_out_share, 0.05, key="mitigate-held"
        )
        stage1 = middle.number_input("Stage 1 steps", 1, 5000, tuning.stage1_steps, key="mitigate-stage1")
        stage2 = middle.number_input("Stage 2 steps", 0, 5000, tuning.stage2_steps, key="mitigate-stage2")
        method = right.radio("Method", METHODS, horizontal=True, key="mitigate-method",
                             help="auto: full fine-tuning up to 100M parameters, LoRA above")  # fmt: skip
        steps = right.select_slider(
            "Curve share steps", [2, 4, 5, 10, 20], curve.proportion_steps, key="mitigate-steps"
        )
        with st.expander("More settings"):
            rate = st.number_input("Learning rate", 1e-6, 1e-1, tuning.learning_rate, format="%.0e", key="mitigate-lr")
            batch = st.number_input("Batch size", 1, 256, tuning.batch_size, key="mitigate-batch")
            position = st.selectbox("Position of inappropriate items (curves)", POSITIONS, key="mitigate-position")
            seed = st.number_input("Seed (split and examples)", 0, 2**31 - 1, 0, key="mitigate-seed")
        submitted = st.form_submit_button("Fine-tune and measure", type="primary")
    tuning = MitigateConfig(
        held_out_share=float(held_out), split_seed=int(seed), n_items=int(n_items), stage1_steps=int(stage1),
        stage2_steps=int(stage2), batch_size=int(batch), learning_rate=float(rate), method=method, seed=int(seed),
    )  # fmt: skip
    curve = CurveConfig(
        n_items=int(n_items), proportion_steps=int(steps), positions=(position,), scoring="sum", seed=int(seed)
    )
    return tuning, curve, submitted


def mitigation(testbed: Testbed, tuning: MitigateConfig, curve: CurveConfig, start: bool) -> wiring.Mitigation | None:
    """The stored mitigation for these settings, or None; when not stored, the background job that computes it
    (started when `start`: the form was submitted) with its progress."""
    try:
        plan = wiring.plan_mitigation(current_spec(), testbed, tuning, curve)
        found = wiring.stored_mitigation(get_store(), plan)
    except USER_ERRORS as error:
        if start:
            show_error(error)
        else:  # only looking for a stored run: say why there cannot be one, without an error the user did not cause
            st.info(str(error))
        return None
    if found is None:
        title = f"RW-Steering of {plan.tuning.spec.name} ({tuning.stage1_steps}+{tuning.stage2_steps} steps)"
        background_job(job_plan(title, mitigation=plan), None, "mitigate-job", start=start)
    return found


def headline_table(done: wiring.Mitigation) -> pd.DataFrame:
    before, after = result_of(done.before), result_of(done.after)
    numbers = before_after(before.points, after.points)
    rows = {
        "clean accuracy (share 0)": ("clean_accuracy_before", "clean_accuracy_after"),
        "poisoned rate at share 0.5": ("poisoned_rate_at_half_before", "poisoned_rate_at_half_after"),
    }
    table = {label: [f"{numbers[b]:.3f}", f"{numbers[a]:.3f}"] for label, (b, a) in rows.items()}
    table["best-fitting model (AICc)"] = [before.rw_fit["best_model"], after.rw_fit["best_model"]]
    return pd.DataFrame(table, index=["before", "after"]).T


def show_mitigation(done: wiring.Mitigation, references: dict | None = None) -> None:
    before, after, tuning = result_of(done.before), result_of(done.after), result_of(done.tuning)
    sides = (before.curve, before.fitted, before.fits), (after.curve, after.fitted, after.fits)
    st.plotly_chart(mitigation_figure(*sides, references), width="stretch", key="mitigate-curve")
    st.dataframe(headline_table(done), width="stretch")
    card = tuning.card
    st.caption(
        f"Tuned model: **{done.tuned.name}** revision **{done.tuned.revision}** ({card['method']}, "
        f"{card['trained_parameters']:,} trained parameters, {card['train_time_s']} s); train items "
        f"{card['split']['train_items']}, held-out items {card['split']['held_out_items']}. Pick it in the sidebar's "
        "checkpoint list to run any probe on it; compare the two curves on the Compare runs page."
    )
    st.code(f"/compare?runs={done.before.run_id[:12]},{done.after.run_id[:12]}", language=None)
    st.plotly_chart(tuning_loss_figure(tuning.history), width="stretch")
    judged = after.scores[["proportion", "judgement"]].drop_duplicates("proportion").head(6)
    with st.expander("The tuned model's judgements (first held-out item per share)"):
        st.dataframe(judged, hide_index=True, width="stretch")


def mitigate_tab(testbed: Testbed | None, references: dict | None = None) -> None:
    st.markdown(EXPLANATION)
    if testbed is None:
        st.info("Choose a testbed above to fine-tune on.")
        return
    tuning, curve, submitted = mitigate_settings()
    done = mitigation(testbed, tuning, curve, start=submitted)
    if done is None:
        st.caption("Press **Fine-tune and measure**: it runs as a background job (leaving the page does not stop it); "
                   "finished runs are stored and shown here.")  # fmt: skip
        return
    show_mitigation(done, references)
