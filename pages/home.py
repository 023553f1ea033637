"""Home: the embedded model's card and the run history from the result store."""

from __future__ import annotations

import json

import streamlit as st

from cache.jobs import ACTIVE, JobStore
from pages.common import JOB_POLL_S, USER_ERRORS, export_buttons, get_store, run_caption, show_error
from probes import jobs
from probes.cli.bundle import build_bundle
from probes.figures.compare import check_same_probe, comparison_for, share_ids
from probes.models import EMBEDDED_MODEL_DIR

COMPARE_PAGE = "pages/compare.py"
RECENT_JOBS = 20

st.title("AssocLens")
st.markdown(
    "Explore how language models behave with four probes, each grounded in a published finding: "
    "**induction heads**, **associative steering (FlexAC)**, **poisoned context (Rescorla-Wagner)** and "
    "**optimizer spectra (Muon vs Adam)**. Pick a model in the sidebar, open a probe in the navigation; "
    "every result is cached and listed below."
)

card = EMBEDDED_MODEL_DIR / "MODEL_CARD.md"
with st.expander("The embedded model (organism)", expanded=False):
    if card.is_file():
        st.markdown(card.read_text())
    else:
        st.warning("The trained organism is not present: the default model is an untrained random stand-in.")


def jobs_section(polling: bool) -> None:
    """Running and recent background jobs (a fragment, reread every JOB_POLL_S while `polling`: some job runs);
    cancel a running one."""
    store = get_store()
    try:
        jobs.reconcile(store)
        table = JobStore(store)
        recent = table.frame(limit=RECENT_JOBS)
        running = table.list(statuses=ACTIVE)
    except USER_ERRORS as error:
        show_error(error)
        return
    if polling and not running:
        st.rerun()  # the last job ended: the whole page, so it stops polling and its run history lists the new runs
    if recent.empty:
        st.caption("None yet. Long runs (emergence training, checkpoint sweeps, RW-Steering) run as background jobs "
                   "and are listed here while they run and after.")  # fmt: skip
        return
    progress = st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0)
    st.dataframe(recent, hide_index=True, width="stretch", column_config={"progress": progress})
    if not running:
        return
    labels = {job.job_id: f"{job.job_id[:8]} · {job.title} · {job.progress:.0%}" for job in running}
    pick, go = st.columns([5, 1], vertical_alignment="bottom")
    chosen = pick.selectbox("Running job", list(labels), format_func=labels.get, key="jobs_cancel_pick")
    if go.button("Cancel job", key="jobs_cancel", width="stretch") and chosen:
        jobs.cancel(store, chosen)
        st.rerun()


st.header("Background jobs")
try:
    some_running = bool(JobStore(get_store()).list(limit=1, statuses=ACTIVE))
except USER_ERRORS:
    some_running = False  # jobs_section says what is wrong
st.fragment(jobs_section, run_every=JOB_POLL_S if some_running else None)(some_running)

st.header("Run history")
store = get_store()
try:
    runs = store.list_runs()
except Exception as error:  # a locked or unreadable database must not take the page down
    show_error(error)
    st.stop()

if runs.empty:
    st.info("No runs yet. Open a probe page: its default run on the embedded model takes seconds.")
    st.stop()

left, right = st.columns(2)
probe_filter = left.multiselect("Probe", sorted(runs["probe"].unique()), key="history_probe")
model_filter = right.multiselect("Model", sorted(runs["model_id"].unique()), key="history_model")
shown = runs
if probe_filter:
    shown = shown[shown["probe"].isin(probe_filter)]
if model_filter:
    shown = shown[shown["model_id"].isin(model_filter)]
st.dataframe(
    shown.drop(columns=["config_json"]).assign(run_id=shown["run_id"].str[:12]),
    hide_index=True,
    width="stretch",
)

labels = {
    row.run_id: f"{row.run_id[:12]} · {row.probe} · {row.model_id}"
    f"{'@' + row.revision if isinstance(row.revision, str) else ''} · {row.created_at:%Y-%m-%d %H:%M}"
    for row in shown.itertuples()
}
pick, go = st.columns([5, 1], vertical_alignment="bottom")
compare_selection = pick.multiselect(
    "Select runs to compare",
    list(labels),
    format_func=labels.get,
    key="history_compare",
    placeholder="Two or more runs of one probe",
    help="Their figures overlaid and their headline numbers side by side, on the Compare runs page.",
    wrap=True,
)
compare_problem = None
if len(compare_selection) >= 2:
    try:
        compare_probes = shown.set_index("run_id").loc[compare_selection, "probe"].tolist()
        check_same_probe(compare_probes)
        if comparison_for(compare_probes[0]) is None:
            raise ValueError(f"Runs of the {compare_probes[0]!r} probe cannot be compared yet.")
    except ValueError as error:
        compare_problem = error
        show_error(error)
if go.button(
    "Compare selected",
    key="history_compare_go",
    disabled=len(compare_selection) < 2 or compare_problem is not None,
    width="stretch",
):
    st.switch_page(COMPARE_PAGE, query_params={"runs": ",".join(share_ids(compare_selection, runs["run_id"]))})

selected = st.selectbox("Open a run", list(labels), format_func=labels.get, index=None, key="history_open")
if selected:
    run = store.load(selected)
    run_caption(run)
    st.subheader("Summary")
    st.json(run.summary, expanded=False)
    st.subheader("Configuration and provenance")
    st.code(json.dumps(run.provenance(), indent=2, default=str), language="json")
    for name, frame in run.tables.items():
        st.markdown(f"**Table `{name}`** ({len(frame)} rows)")
        st.dataframe(frame.head(200), hide_index=True, width="stretch")
    export_buttons(run, key_prefix="history")
    bundle_state = f"history_bundle_{run.run_id}"
    if st.button(
        "Bundle",
        key="history_bundle",
        help="A reproducible bundle: tables (Parquet, CSV), figures (HTML, PNG, SVG), provenance, inputs, the "
        "command that recomputes the run and a manifest of sha256 digests, as one zip.",
    ):
        try:
            with st.spinner("Building the bundle (figures are rendered by a headless browser)…"):
                built = build_bundle(run, store)
            for older in [key for key in st.session_state if str(key).startswith("history_bundle_")]:
                del st.session_state[older]  # one bundle held in memory per session
            st.session_state[bundle_state] = (built.name, built.zip(), built.messages)
        except USER_ERRORS as error:
            show_error(error)
    if bundle_state in st.session_state:
        bundle_name, bundle_zip, bundle_messages = st.session_state[bundle_state]
        for message in bundle_messages:  # e.g. PNG/SVG skipped because no browser could start
            st.warning(message)
        st.download_button(
            "Download bundle",
            data=bundle_zip,
            file_name=f"{bundle_name}.zip",
            mime="application/zip",
            key=f"history-bundle-{run.run_id[:12]}",
        )
    if st.button("Delete this run", type="secondary", key="history_delete"):
        store.delete(selected)
        st.rerun()
