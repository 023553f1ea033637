"""AssocLens: entry point. Navigation over the probe pages and the sidebar model picker."""

from __future__ import annotations

import streamlit as st

from pages.common import (
    RAY_ADDRESS_KEY,
    SPEC_STATE_KEY,
    current_spec,
    end_orphaned_jobs,
    get_model,
    show_error,
    show_store_notice,
)
from probes import catalog
from probes.models import (
    EMBEDDED_MODEL_DIR,
    EMBEDDED_MODEL_NAME,
    ModelLoadError,
    ModelSpec,
    describe,
    local_revisions,
    tuned_revisions,
)

PAGES = [
    st.Page("pages/home.py", title="Runs and models", icon=":material/home:", default=True),
    st.Page("pages/induction.py", title="Induction heads", icon=":material/content_copy:"),
    st.Page("pages/steering.py", title="Associative steering", icon=":material/tune:"),
    st.Page("pages/poisoned.py", title="Poisoned context", icon=":material/science:"),
    st.Page("pages/spectra.py", title="Optimizer spectra", icon=":material/equalizer:"),
    st.Page("pages/compare.py", title="Compare runs", icon=":material/compare:", url_path="compare"),
]
FAILED_STATE_KEY = "failed_model_load"
DEVICES = ["auto", "cpu", "cuda", "mps"]
DTYPES = ["auto", "float32", "bfloat16", "float16"]
TYPE_A_NAME = "(type a name)"  # first option of the catalog: keep the name field as typed
FINAL_CHECKPOINT = "(final)"
CATALOG_KEY, CHECKPOINT_KEY = "model_catalog", "model_catalog_revision"
APPLIED_CATALOG_KEY, APPLIED_CHECKPOINT_KEY = "_model_catalog_applied", "_model_catalog_revision_applied"


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
        revisions = ["(final)"] + local_revisions(EMBEDDED_MODEL_DIR) + tuned_revisions(EMBEDDED_MODEL_NAME)
        chosen = st.selectbox("Checkpoint", revisions, key="embedded_revision")
        revision = None if chosen == "(final)" else chosen
    else:
        name, revision = hub_model_fields(spec)
    with st.expander("Device and precision"):
        device = st.selectbox("Device", DEVICES, key="model_device")
        dtype = st.selectbox("Dtype", DTYPES, key="model_dtype")
        trust = st.checkbox("Trust remote code (runs code from the model's repository)", key="trust_remote_code")
    if source != "Embedded organism" and (entry := catalog.find(name)) is not None:
        catalog_facts(entry, ModelSpec(name=name, device=device, dtype=dtype))  # before any download
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


def catalog_option(option: str) -> str:
    entry = catalog.find(option)
    return option if entry is None else f"{entry.family} · {entry.label}"


def hub_model_fields(spec: ModelSpec) -> tuple[str, str | None]:
    """Catalog, name, checkpoint and revision fields. Picking a catalog entry (or checkpoint) fills the name (and
    revision) field once; the fields stay editable and are what gets loaded."""
    state = st.session_state
    choice = st.selectbox("Catalog", [TYPE_A_NAME, *(entry.name for entry in catalog.entries())],
                          format_func=catalog_option, key=CATALOG_KEY,
                          help="Known models with their size and memory need; or type any name below.")  # fmt: skip
    if state.get(APPLIED_CATALOG_KEY) != choice:  # a new pick: copy it into the fields (typing later still wins)
        state[APPLIED_CATALOG_KEY] = choice
        if (picked := catalog.find(choice)) is not None:
            state["model_name"], state["model_revision"] = picked.name, ""
            if state.get(CHECKPOINT_KEY) not in picked.revisions:
                state.pop(CHECKPOINT_KEY, None)
            state.pop(APPLIED_CHECKPOINT_KEY, None)
    if "model_name" not in state:
        state["model_name"] = "" if spec.name == EMBEDDED_MODEL_NAME else spec.name
    name = st.text_input("Model name or folder", placeholder="EleutherAI/pythia-70m", key="model_name").strip()
    entry = catalog.find(name)
    if entry is not None and entry.has_revisions:
        checkpoint = st.selectbox("Checkpoint", [FINAL_CHECKPOINT, *entry.revisions], key=CHECKPOINT_KEY,
                                  help="Training checkpoints on the hub; fills the revision field.")  # fmt: skip
        if checkpoint != state.get(APPLIED_CHECKPOINT_KEY, FINAL_CHECKPOINT):
            state[APPLIED_CHECKPOINT_KEY] = checkpoint
            state["model_revision"] = "" if checkpoint == FINAL_CHECKPOINT else checkpoint
    else:
        state.pop(APPLIED_CHECKPOINT_KEY, None)
    revision = st.text_input("Revision (optional)", placeholder="step1000", key="model_revision").strip()
    return name, revision or None


def catalog_facts(entry: catalog.CatalogEntry, spec: ModelSpec) -> None:
    """What the catalog knows, and whether the model fits this machine's free memory at the dtype it would load in."""
    flags = ["gated: accept its licence on the hub and log in with a token" if entry.gated else "open",
             "instruction-tuned" if entry.instruct else "base model"]  # fmt: skip
    if entry.has_revisions:
        flags.append(f"{len(entry.revisions)} checkpoints")
    fp32, bf16 = catalog.memory_bytes(entry, "float32"), catalog.memory_bytes(entry, "bfloat16")
    st.caption(
        f"**{entry.label}** ({entry.family}): {catalog.format_count(entry.parameters)} parameters · "
        f"about {catalog.format_gib(fp32)} at fp32, {catalog.format_gib(bf16)} at bf16 "
        f"(weights ×{catalog.OVERHEAD} for activations) · {' · '.join(flags)}"
    )
    try:
        placement = describe(spec)
        free = catalog.available_memory(placement["device"])
    except (ModelLoadError, ValueError, RuntimeError, OSError):
        return
    dtype, where = placement["dtype"], "this machine" if placement["device"] in {"cpu", "mps"} else "this GPU"
    if catalog.fits(entry, dtype, free):
        st.caption(f"Fits in {where}'s memory ({catalog.format_gib(free)} free) at {dtype}.")
        return
    hint = ""
    if dtype == "float32" and catalog.fits(entry, "bfloat16", free):
        hint = " At bfloat16 it fits: choose it under 'Device and precision'."
    st.warning(
        f"Needs about {catalog.format_gib(catalog.memory_bytes(entry, dtype))} at {dtype}; {where} has "
        f"{catalog.format_gib(free)} free.{hint}"
    )


def job_settings() -> None:
    """Sidebar: where background jobs compute (a worker process here, or a Ray cluster)."""
    with st.expander("Background jobs"):
        st.text_input(
            "Ray cluster address",
            key=RAY_ADDRESS_KEY,
            placeholder="HOST:PORT, auto or local",
            help="Empty: jobs run in a worker process on this machine. HOST:PORT of a running Ray head (`ray start "
            "--head`), or 'auto' for the cluster this machine belongs to: jobs compute on that cluster; 'local' "
            "starts a Ray here (pip install -r requirements-ray.txt). Their runs are stored here either way.",
        )


def main() -> None:
    st.set_page_config(page_title="AssocLens", page_icon=":material/biotech:", layout="wide")
    navigation = st.navigation(PAGES)
    with st.sidebar:
        model_picker()
        job_settings()
    show_store_notice()
    end_orphaned_jobs()  # a database moved aside is announced on whichever page the user opens
    navigation.run()


main()
