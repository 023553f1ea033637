"""Poisoned-context page: the testbed every tab reads (built-in, uploaded or pasted) and shared widgets' texts."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages.common import current_spec, show_error
from probes.models import ModelLoadError
from probes.poisoned import Testbed, TestbedError, load_testbed
from probes.poisoned.scoring import SCORINGS
from probes.poisoned.testbed import (
    CSV_COLUMNS,
    EMBEDDED_TESTBED,
    MAX_UPLOAD_BYTES,
    default_testbed_path,
    load_testbed_file,
)

BUILT_IN = "Built-in testbed"  # the value of the first option; its label names the testbed that fits the model
SOURCES = (BUILT_IN, "Upload a file", "Paste text")
UPLOAD_LABEL = "Upload a testbed (.json, .jsonl or .csv, at most 10 MB)"
SCORING_LABELS = {
    "calibrated": "calibrated: log-prob minus its log-prob with no context (default)",
    "sum": "sum of the answer's token log-probs",
    "mean": "mean log-prob per answer token",
}
SCORING_HELP = (
    "How an answer's token log-probabilities become one score before reference and claim are compared. "
    "'sum' lets the shorter answer win on text whose answers differ in length (measured: correlation -0.97 "
    "between length gap and log-odds); 'calibrated' subtracts the answer's log-prob after the content-free prompt "
    "'N/A' (Holtzman et al. 2021, Zhao et al. 2021), so it compares what the context adds."
)


def scoring_select(container, key: str, default: str) -> str:
    """The "Answer scoring" choice (sum, mean, calibrated) of the curve and explore settings."""
    return container.selectbox("Answer scoring", SCORINGS, SCORINGS.index(default), format_func=SCORING_LABELS.get,
                               key=key, help=SCORING_HELP)  # fmt: skip


FORMAT_HELP = f"""
**Public testbed schema (.json)**: a list of objects with `Question`, `Generated Information` (appropriate
sentences), `Input` (the inappropriate claim), `Synonym Sentence` (paraphrases of the claim) and `Simple Answer`
(the reference answer); privacy items use `Non-private Information` / `Privacy information`. Sentence fields may be
a list or one string. The category is `Category` if present, else the file name (`fakenews_output.json` → fakenews).

**Our format (.csv, or .jsonl with the same keys)**: columns `{",".join(CSV_COLUMNS)}` and optionally `claim`.
`appropriate` and `inappropriate` hold one or more sentences separated by `|`; the claim defaults to the first
inappropriate sentence. Example row: `What is the capital of Zorva?,The capital of Zorva is Pelum.|Zorva is a
country.,The capital of Zorva is Kret.,The capital of Zorva is Pelum.,geography`

Limits: {MAX_UPLOAD_BYTES // 2**20} MB, UTF-8 text, 50,000 items, JSON nested at most 16 deep. Rows with a wrong
field are skipped and listed (row index and field); nothing is executed, and formula-looking cells stay plain text.
"""


@st.cache_resource(show_spinner=False, max_entries=4)
def _built_in_testbed(path: str, stamp: tuple[int, int]) -> Testbed:
    """A built-in testbed, parsed once per file version (`stamp`: modification time and size)."""
    return load_testbed_file(path)


def built_in_testbed() -> tuple[str, str, Testbed | TestbedError | None]:
    """The name and radio label of the built-in testbed that fits the sidebar's model, and that testbed (None when
    the file is missing, the error when it cannot be read)."""
    try:
        path = default_testbed_path(current_spec())
    except ModelLoadError:  # the sidebar names a folder that is gone (the sidebar says so); offer the organism's
        path = EMBEDDED_TESTBED
    name = "Organism testbed" if path == EMBEDDED_TESTBED else "English testbed"
    if not path.is_file():
        return name, f"{name} (missing)", None
    try:
        stat = path.stat()
        testbed = _built_in_testbed(str(path), (stat.st_mtime_ns, stat.st_size))
    except TestbedError as error:
        return name, f"{name} (unreadable)", error
    count = len(testbed.categories())
    categories = f", {count} categories" if count > 1 else ""
    return name, f"{name} ({len(testbed.items)} items{categories})", testbed


def read_testbed() -> Testbed | None:
    """The testbed chosen in the widgets, or None (with one message) when there is none or it is invalid."""
    name, label, built_in = built_in_testbed()
    source = st.radio(
        "Testbed",
        SOURCES,
        horizontal=True,
        key="poisoned-source",
        format_func=lambda option: label if option == BUILT_IN else option,
        help="The built-in testbed fits the sidebar's model: the organism's own (in its invented vocabulary) for "
        "the organism, an English one written for AssocLens for every other model.",
    )
    with st.expander("Upload format"):
        st.markdown(FORMAT_HELP)
    try:
        if source == BUILT_IN:
            if isinstance(built_in, TestbedError):
                raise built_in
            if built_in is None:
                st.info(f"The {name.lower()} is not there yet; upload or paste one.")
                return None
            return built_in
        if source == SOURCES[1]:
            upload = st.file_uploader(
                UPLOAD_LABEL,
                type=["json", "jsonl", "csv"],
                key="poisoned-upload",
                max_upload_size=MAX_UPLOAD_BYTES // 2**20,
            )
            return load_testbed(upload.getvalue(), upload.name) if upload is not None else None
        kind = st.selectbox("Pasted format", ["json", "jsonl", "csv"], key="poisoned-paste-format")
        text = st.text_area("Paste a testbed", height=150, key="poisoned-paste")
        return load_testbed(text.encode("utf-8"), f"pasted.{kind}") if text.strip() else None
    except TestbedError as error:
        show_error(error)
        return None


def describe_testbed(testbed: Testbed) -> None:
    categories = ", ".join(f"{name} ({count})" for name, count in testbed.categories().items())
    st.success(f"{testbed.source}: {len(testbed.items)} usable items; categories: {categories}.")
    if testbed.skipped:
        count = len(testbed.skipped)
        st.warning(f"{count} {'row' if count == 1 else 'rows'} skipped, e.g. {testbed.skipped[0].reason}.")
        with st.expander("Skipped rows"):
            st.dataframe(pd.DataFrame([row.__dict__ for row in testbed.skipped]), hide_index=True, width="stretch")


def show_coverage_warnings(warnings: list[str]) -> None:
    """The probe's coverage warnings (the model cannot read the input), above every figure of the run."""
    for warning in warnings:
        st.warning(warning, icon="⚠️")
