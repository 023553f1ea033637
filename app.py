"""AssocLens: entry point. Navigation over the probe pages and the sidebar model picker."""

from __future__ import annotations

import streamlit as st

from pages.common import SPEC_STATE_KEY, current_spec, get_model, show_error, show_store_notice
from probes.models import (
    EMBEDDED_MODEL_DIR,
    EMBEDDED_MODEL_NAME,
    ModelLoadError,
    ModelSpec,
    describe,
    local_revisions,
)

PAGES = [
    st.Page("pages/home.py", title="Runs and models", icon=":material/home:", default=True),
    st.Page("pages/induction.py", title="Induction heads", icon=":material/content_copy:"),
    st.Page("pages/steering.py", title="Associative steering", icon=":material/tune:"),
    st.Page("pages/poisoned.py", title="Poisoned context", icon=":material/science:"),
    st.Page("pages/spectra.py", title="Optimizer spectra", icon=":material/equalizer:"),
]
FAILED_STATE_KEY = "failed_model_load"
DEVICES = ["auto", "cpu", "cuda", "mps"]
DTYPES = ["auto", "float32", "bfloat16", "float16"]


def model_picker() -> None:
    """Sidebar: embedded organism or any Hugging Face name / local folder, revision, device, dtype."""
    st.header("Model")
    spec = current_spec()
    source = st.radio(
        "Source",
        ["Embedded organism", "Hugging Face name or local folder"],
        index=0 if spec.name == EMBEDDED_MODEL_NAME else 1,
        key="model_source",
    )
    if source == "Embedded organism":
        name = EMBEDDED_MODEL_NAME
        revisions = ["(final)"] + local_revisions(EMBEDDED_MODEL_DIR)
        chosen = st.selectbox("Checkpoint", revisions, key="embedded_revision")
        revision = None if chosen == "(final)" else chosen
    else:
        name = st.text_input(
            "Model name or folder",
            value="" if spec.name == EMBEDDED_MODEL_NAME else spec.name,
            placeholder="EleutherAI/pythia-70m",
            key="model_name",
        ).strip()
        revision = st.text_input("Revision (optional)", placeholder="step1000", key="model_revision").strip()
        revision = revision or None
    with st.expander("Device and precision"):
        device = st.selectbox("Device", DEVICES, key="model_device")
        dtype = st.selectbox("Dtype", DTYPES, key="model_dtype")
        trust = st.checkbox("Trust remote code (runs code from the model's repository)", key="trust_remote_code")
    if not name:
        st.info("Type a model name, then press Enter.")
        return
    candidate = ModelSpec(name=name, revision=revision, device=device, dtype=dtype, trust_remote_code=trust)
    failed = st.session_state.get(FAILED_STATE_KEY)
    if failed and failed[0] == candidate:  # don't retry a failed load on every rerun; change an input to retry
        show_error(failed[1])
        st.caption(f"Pages keep using **{spec.name}**.")
        return
    try:
        placement = describe(candidate)
        get_model(candidate)
    except (ModelLoadError, ValueError, MemoryError) as error:
        st.session_state[FAILED_STATE_KEY] = (candidate, error)
        show_error(error)
        st.caption(f"Pages keep using **{spec.name}**.")
        return
    st.session_state[SPEC_STATE_KEY] = candidate
    st.caption(
        f"Loaded **{name}**{' @ ' + revision if revision else ''} on {placement['device']} · {placement['dtype']}"
    )


def main() -> None:
    st.set_page_config(page_title="AssocLens", page_icon=":material/biotech:", layout="wide")
    navigation = st.navigation(PAGES)
    with st.sidebar:
        model_picker()
    show_store_notice()  # a database moved aside is announced on whichever page the user opens
    navigation.run()


main()
