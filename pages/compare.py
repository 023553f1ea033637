"""Compare runs: two or more stored runs of one probe, their main figures overlaid, their headline numbers side by
side, the overlaid data for download. The URL carries the runs (`/compare?runs=<id>,<id>`, full ids or unique
prefixes of at least 8 characters), so a comparison can be bookmarked and shared."""

from __future__ import annotations

import io

import pandas as pd
import streamlit as st

from cache.store import neutralise_formulas
from pages.common import USER_ERRORS, get_store, show_error
from probes.figures import Comparison, LabelledRun
from probes.figures.compare import (
    check_same_probe,
    comparable_probes,
    comparison_for,
    export_frame,
    headline_table,
    labelled_runs,
    parse_run_ids,
    resolve_run_ids,
    share_ids,
)

PARAM = "runs"  # the query parameter: comma-separated run ids
PROBE_KEY, RUNS_KEY = "compare_probe", "compare_runs"
URL_KEY = "_compare_url_applied"  # the `runs` value last read from or written to the URL
PAGE_PATH = "compare"


def run_option_label(row: pd.Series) -> str:
    revision = f"@{row['revision']}" if isinstance(row["revision"], str) and row["revision"] else ""
    return f"{row['model_id']}{revision} · {row['created_at']:%Y-%m-%d %H:%M} · {row['run_id'][:12]}"


def probe_option_label(probe: str, count: int) -> str:
    return f"{probe} ({count} run{'' if count == 1 else 's'})"


def apply_url(index: pd.DataFrame) -> bool:
    """When the URL names runs the page has not applied yet (a bookmark, a shared link, the home page's button),
    preset the pickers to them; a clear error (and False) when they are unknown, of several probes or not
    comparable."""
    state = st.session_state
    value = st.query_params.get(PARAM)
    if not value or (value == state.get(URL_KEY) and RUNS_KEY in state):
        return True
    state[URL_KEY] = value
    state[RUNS_KEY] = []
    try:
        run_ids = resolve_run_ids(parse_run_ids(value), index["run_id"])
        probes = index.set_index("run_id").loc[run_ids, "probe"].tolist()
        check_same_probe(probes)
        if comparison_for(probes[0]) is None:
            raise ValueError(f"Runs of the {probes[0]!r} probe cannot be compared yet; pick runs of another probe.")
    except ValueError as error:
        show_error(error)
        return False
    state[PROBE_KEY], state[RUNS_KEY] = probes[0], run_ids
    return True


def pick_runs(index: pd.DataFrame) -> tuple[str | None, list[str]]:
    """The probe select box and the multiselect of its stored runs (newest first)."""
    counts = index["probe"].value_counts()
    probes = [probe for probe in comparable_probes() if counts.get(probe, 0) > 0]
    if not probes:
        st.info("No stored runs of a probe that can be compared yet. Run a probe twice (e.g. two models or two "
                "checkpoints), then come back.")  # fmt: skip
        return None, []
    state = st.session_state
    if state.get(PROBE_KEY) not in probes:
        state[PROBE_KEY] = max(probes, key=lambda probe: counts[probe])
    left, right = st.columns([1, 3])
    probe = left.selectbox("Probe", probes, key=PROBE_KEY, format_func=lambda p: probe_option_label(p, counts[p]))
    rows = index[index["probe"] == probe]
    options = {row.run_id: run_option_label(row) for _, row in rows.iterrows()}
    state[RUNS_KEY] = [run_id for run_id in state.get(RUNS_KEY, []) if run_id in options]
    chosen = right.multiselect(
        "Runs",
        list(options),
        key=RUNS_KEY,
        format_func=options.get,
        placeholder="Pick two or more runs",
        help="Runs of the chosen probe, newest first: model, checkpoint, date, run id.",
        wrap=True,
    )
    if len(options) < 2:
        st.info(f"Only one stored run of {probe}: run it again with another model, checkpoint or setting.")
    return probe, chosen


def write_url(index: pd.DataFrame, run_ids: list[str], keep: bool) -> str | None:
    """Put the chosen runs into the URL (short ids) and return the shareable link. With fewer than two, clear the
    URL's runs unless `keep` (a link that just failed stays as typed, beside its error)."""
    if len(run_ids) < 2:
        if not keep:
            st.query_params.pop(PARAM, None)
            st.session_state.pop(URL_KEY, None)
        return None
    value = ",".join(share_ids(run_ids, index["run_id"]))
    if st.query_params.get(PARAM) != value:
        st.query_params[PARAM] = value
    st.session_state[URL_KEY] = value
    base = st.context.url or PAGE_PATH
    if not base.rstrip("/").endswith(PAGE_PATH):
        base = f"{base.rstrip('/')}/{PAGE_PATH}"
    return f"{base}?{PARAM}={value}"


def load_runs(run_ids: list[str]) -> list[LabelledRun] | None:
    store = get_store()
    try:
        stored = [store.load(run_id) for run_id in run_ids]
        check_same_probe([run.probe for run in stored])
    except USER_ERRORS as error:
        show_error(error)
        return None
    return labelled_runs(stored)


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def show_comparison(probe: str, comparison: Comparison, runs: list[LabelledRun]) -> None:
    for number, figure in enumerate(comparison.figures(runs)):
        st.plotly_chart(figure, width="stretch", key=f"compare_figure_{number}")
    st.subheader("Headline numbers")
    st.dataframe(headline_table(runs, comparison), width="stretch", height="content")
    st.subheader("Overlaid data")
    data = export_frame(comparison.overlaid(runs), runs)
    st.caption(f"{len(data):,} rows, one `run` column naming each run as in the figures, `run_id` its full id.")
    name = f"compare-{probe}-{'-'.join(run.run_id[:8] for run in runs[:4])}{'-etc' if len(runs) > 4 else ''}"
    left, right, _ = st.columns([1, 1, 3])
    left.download_button("Download CSV", data=lambda: neutralise_formulas(data).to_csv(index=False).encode(),
                         file_name=f"{name}.csv", mime="text/csv", key="compare_csv")  # fmt: skip
    right.download_button("Download Parquet", data=lambda: parquet_bytes(data), file_name=f"{name}.parquet",
                          mime="application/vnd.apache.parquet", key="compare_parquet")  # fmt: skip


st.title("Compare runs")
st.caption(
    "Two or more stored runs of one probe (different models, checkpoints, steering strengths, before and after a "
    "fine-tuning): their main figures overlaid, their headline numbers side by side. Select runs here or in the run "
    "history on the home page; the page's URL names the runs, so a comparison can be bookmarked and shared."
)
try:
    stored_runs = get_store().list_runs()
except Exception as error:  # a locked or unreadable database must not take the page down
    show_error(error)
    st.stop()

url_ok = apply_url(stored_runs)
chosen_probe, chosen_ids = pick_runs(stored_runs)
link = write_url(stored_runs, chosen_ids, keep=not url_ok)
if chosen_probe is None or len(chosen_ids) < 2:
    st.stop()
st.caption("Shareable link to this comparison:")
st.code(link, language=None, wrap_lines=True)
compared = load_runs(chosen_ids)
chosen_comparison = comparison_for(chosen_probe)
if compared is not None and chosen_comparison is not None:
    show_comparison(chosen_probe, chosen_comparison, compared)
