"""Poisoned-context page, curves tab: the testbed's curve under a stored FlexAC steering vector, one per strength."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages.common import cached_run, current_spec, get_store, prompt_caption, show_error
from probes.figures.poisoned import steered_figure
from probes.models import model_identity
from probes.poisoned import NAME, CurveConfig, Testbed
from probes.poisoned.probe import Steer, SteeredTestbed
from probes.steering import VECTORS_NAME
from probes.wiring import result_of

NO_VECTOR = ""  # the steering choice's "no vector" option
DEFAULT_STEER_STRENGTHS = "-2, 0, 2"
STEER_HELP = (
    "Score the testbed with a stored FlexAC steering vector of this model applied (every prompt and answer position "
    "of the vector's layers), once per strength, and overlay the curves: negative strengths push toward the faithful "
    "register, positive toward the associative one (+2 carries faithful outputs one centroid distance). Build a "
    "vector on the Associative steering page or with `python -m probes steering vectors`."
)


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
    curves = [(value, result.curve, result.position) for value, result in results]
    st.plotly_chart(steered_figure(curves, results[0][1].strength), width="stretch", key="poisoned-steered")
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
