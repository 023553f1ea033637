"""The one UI helper module: model picking, cached probe runs with progress, error boxes, exports."""

from __future__ import annotations

import os
from collections.abc import Callable

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner import get_script_run_ctx

from cache import ResultStore, StoredRun, StoreError
from cache.jobs import ACTIVE, CANCELLED, FAILED, Job, JobStore
from cache.store import DB_PATH_ENV
from probes import jobs, wiring
from probes import references as published
from probes.executors import ExecutorError
from probes.jobs import JobPlan
from probes.models import EMBEDDED_MODEL_NAME, ModelLoadError, ModelSpec, load_model
from probes.wiring import REGISTRY, Request

SPEC_STATE_KEY = "model_spec"
RAY_ADDRESS_KEY = "ray_address"  # the sidebar's cluster setting: jobs compute on Ray when it is set
USER_ERRORS = (ModelLoadError, StoreError, ValueError, MemoryError, ExecutorError)
JOB_POLL_S = 1.5  # how often a page showing a running job rereads it (each read opens the database)


def _leave_legacy_multipage_mode() -> None:
    """Make the first run of a server process go through app.py's navigation and sidebar.

    Because our page files live in a folder named `pages/` (as the product brief asks), Streamlit starts each
    process in its legacy multipage mode until some script calls `st.navigation`: a deep link opened as the very
    first visit (`/poisoned`) would run the page file on its own, without app.py's navigation and model picker.
    Every page imports this module, so the first import leaves that mode and reruns; Streamlit then runs app.py,
    whose `st.navigation` opens the requested page. (AppTest resets the mode on every run, so tests that change
    widgets between runs see only the page; they preset session state instead.)
    """
    if PagesManager.uses_pages_directory and get_script_run_ctx() is not None:
        PagesManager.uses_pages_directory = False
        st.rerun()


def current_spec() -> ModelSpec:
    return st.session_state.get(SPEC_STATE_KEY) or ModelSpec(name=EMBEDDED_MODEL_NAME)


@st.cache_resource(show_spinner="Loading model…", max_entries=4)
def _load_cached(name: str, revision: str | None, device: str, dtype: str, trust_remote_code: bool):
    return load_model(ModelSpec(name, revision, device, dtype, trust_remote_code))


def get_model(spec: ModelSpec | None = None):
    """The loaded model for `spec` (default: the sidebar's), cached per id, revision, device and dtype."""
    spec = spec or current_spec()
    return _load_cached(spec.name, spec.revision, spec.device, spec.dtype, spec.trust_remote_code)


@st.cache_resource
def _store_at(path: str | None) -> ResultStore:
    return ResultStore(path)


def get_store() -> ResultStore:
    """The result store at $ASSOCLENS_DB (or the default path); one object per path per process."""
    return _store_at(os.environ.get(DB_PATH_ENV))


def show_store_notice() -> None:
    notice = get_store().notice
    if notice:
        st.warning(notice)


def request_for(probe: str, config: object, inputs: object = None, spec: ModelSpec | None = None) -> Request:
    """The request for `probe` on the sidebar's model (or `spec`); probes that train their own model take none."""
    own_model = REGISTRY[probe].own_model is not None
    return Request(probe, config, None if own_model else (spec or current_spec()), inputs)


def progress_bar(label: str) -> tuple[Callable[[float, str], None], object]:
    """A Streamlit progress bar and the `progress(fraction, message)` callback the probes accept."""
    bar = st.progress(0.0, text=label)

    def progress(fraction: float, message: str = "") -> None:
        bar.progress(max(0.0, min(1.0, fraction)), text=f"{label}: {message}" if message else label)

    return progress, bar


def cached_run(
    probe: str,
    config: object,
    inputs: object = None,
    spec: ModelSpec | None = None,
    label: str = "Running probe",
    compute: bool = True,
    on_record: Callable[[dict], None] | None = None,
) -> StoredRun | None:
    """Serve a probe run from the store, or (when `compute`) run it through the wiring layer with a progress bar;
    user errors become one message."""
    try:
        request = request_for(probe, config, inputs, spec)
        store = get_store()
        found = wiring.lookup(store, request)
        if found is not None or not compute:
            return found
        progress, bar = progress_bar(label)
        run = wiring.run(store, request, load=get_model, progress=progress, on_record=on_record)
        bar.empty()
        return run
    except USER_ERRORS as error:
        show_error(error)
        return None


def cached_lookup(probe: str, config: object, inputs: object = None, spec: ModelSpec | None = None) -> StoredRun | None:
    """The stored run for these inputs, without computing anything."""
    return cached_run(probe, config, inputs, spec, compute=False)


def show_error(error: BaseException) -> None:
    if isinstance(error, MemoryError):
        st.error("Out of memory: try a smaller model, shorter inputs or fewer items.")
    else:
        st.error(" ".join(str(error).split()) or type(error).__name__)


def about_box(what: str, source: str, deviations: str | None = None) -> None:
    """The 'what am I looking at' box every page opens with."""
    with st.expander("About this probe", expanded=False):
        st.markdown(what)
        st.caption(f"Source: {source}")
        if deviations:
            st.info(f"How this differs from the paper: {deviations}")


def export_buttons(run: StoredRun, key_prefix: str = "export") -> None:
    """Download the run's tables (CSV or Parquet, zipped with provenance)."""
    store = get_store()
    short = run.run_id[:12]
    left, right = st.columns(2)
    left.download_button(
        "Export CSV",
        data=lambda: store.export_zip(run.run_id, "csv"),  # built on click, not on every render
        file_name=f"{run.probe}-{short}-csv.zip",
        mime="application/zip",
        key=f"{key_prefix}-csv-{short}",
    )
    right.download_button(
        "Export Parquet",
        data=lambda: store.export_zip(run.run_id, "parquet"),
        file_name=f"{run.probe}-{short}-parquet.zip",
        mime="application/zip",
        key=f"{key_prefix}-parquet-{short}",
    )


# --- background jobs -------------------------------------------------------------------------------------------


def job_plan(
    title: str, requests: tuple[Request, ...] = (), mitigation: wiring.MitigationPlan | None = None
) -> JobPlan:
    """A job plan for the sidebar's executor: a worker process here, or the Ray cluster named in the settings."""
    address = (st.session_state.get(RAY_ADDRESS_KEY) or "").strip() or None
    return JobPlan(title, tuple(requests), mitigation, address)


def background_job(
    plan: JobPlan,
    start_label: str | None,
    key: str,
    live: Callable[[Job], None] | None = None,
    start: bool = False,
    restore: Callable[[Job], None] | None = None,
) -> None:
    """For work that is not stored yet: the live view of the job doing it (progress, cancel, `live(job)`), or why
    the last try ended, and a button `start_label` that starts it as a background job (or `start`: the page's own
    form was submitted). The page reruns when the job ends, and then finds its runs in the store. Other running
    jobs of the same probe (other settings, other sessions) are shown too, so a page reopened mid-run shows them;
    `restore(job)` (a button callback) sets the page's widgets to such a job's settings."""
    store = get_store()
    try:
        jobs.reconcile(store)
        table, job_key = JobStore(store), plan.key()
        job = table.latest_for(job_key)
        others = [
            other for other in table.list(statuses=ACTIVE) if other.probe == plan.probe and other.job_key != job_key
        ]
    except USER_ERRORS as error:
        show_error(error)
        return
    for other in others:
        with st.expander(f"Running: {other.title} (other settings, job {other.job_id[:8]})", expanded=True):
            if restore is not None:
                st.button("Use its settings", key=f"{key}-restore-{other.job_id[:8]}", on_click=restore,
                          args=(other,), help="The page takes the job's settings: its result shows here.")  # fmt: skip
            job_progress(other.job_id, f"{key}-other-{other.job_id[:8]}", live, len(other.run_ids))
    if job is not None and job.active:
        job_progress(job.job_id, key, live, len(job.run_ids))
        return
    if job is not None and job.status in (FAILED, CANCELLED) and not start:
        ended = st.warning if job.status == CANCELLED else st.error
        ended(f"The last job for these settings ({job.title}) {job.status}: {job.error}")
    if start_label is not None and st.button(start_label, type="primary", key=key):
        start = True
    if start:
        try:
            jobs.submit(store, plan)
        except USER_ERRORS as error:
            show_error(error)
            return
        st.rerun()


@st.fragment(run_every=JOB_POLL_S)
def job_progress(job_id: str, key: str, live: Callable[[Job], None] | None = None, runs_shown: int = 0) -> None:
    """A running job, reread every JOB_POLL_S: progress, where it runs, a cancel button and `live(job)`. The whole
    page reruns once it has ended, and when it has stored more runs than the `runs_shown` the page drew (a fragment
    keeps the arguments of the page run that drew it, so each page run sets the count anew)."""
    store = get_store()
    try:
        job = JobStore(store).require(job_id)
        if job.active and not jobs.worker_alive(job):  # its worker died: end it now, with the reason
            jobs.reconcile(store)
            job = JobStore(store).require(job_id)
    except USER_ERRORS as error:
        show_error(error)
        return
    if not job.active or len(job.run_ids) > runs_shown:
        st.rerun()  # it ended, or stored another run (a sweep's checkpoint): the page draws what is stored now
    st.progress(job.progress, text=f"{job.title}: {job.message or job.status}")
    where = "on the Ray cluster " + job.config["executor"][4:] if job.config.get("executor", "").startswith("ray:") \
        else "in a worker process"  # fmt: skip
    left, right = st.columns([4, 1], vertical_alignment="center")
    left.caption(f"Background job `{job.job_id[:8]}`, {job.status} {where}: leaving this page or closing the tab does "
                 "not stop it; the home page lists it.")  # fmt: skip
    if right.button("Cancel job", key=f"{key}-cancel"):
        jobs.cancel(store, job.job_id)
        st.rerun()
    if live is not None:
        live(job)


@st.cache_resource
def _orphans_ended_at(path: str) -> list[Job]:
    return jobs.reconcile(ResultStore(path))


def end_orphaned_jobs() -> None:
    """Once per app process and store: jobs left running by workers that are gone (the app was restarted, a worker
    was killed) are marked failed with the reason, and the page says so."""
    try:
        ended = _orphans_ended_at(str(get_store().path))
    except USER_ERRORS as error:
        show_error(error)
        return
    if ended and not st.session_state.get("_orphans_announced"):
        st.session_state["_orphans_announced"] = True
        titles = ", ".join(job.title for job in ended[:3]) + (" …" if len(ended) > 3 else "")
        st.warning(f"{len(ended)} background job(s) had no worker any more and were marked failed: {titles}. "
                   "The home page lists them with the reason.")  # fmt: skip


def job_records(job: Job) -> list[dict]:
    """The history records a running job has written so far (emergence training's curve)."""
    return JobStore(get_store()).records(job.job_id)


CHAT_TEMPLATE_LABELS = {
    "auto": "Chat template when the model has one",
    "on": "Always the chat template",
    "off": "Plain text",
}


def chat_template_select(container, key: str) -> str:
    """The prompt-format switch (auto, on, off) every prompt-building probe takes; part of the run key."""
    return container.selectbox(
        "Prompt format",
        CHAT_TEMPLATE_LABELS,
        format_func=CHAT_TEMPLATE_LABELS.get,
        key=key,
        help="Instruction-tuned models read prompts as one user turn of their chat template; the candidate answer "
        "or the continuation starts the assistant's reply. 'auto' uses the template whenever the tokenizer has one.",
    )


def prompt_caption(prompt_format: str, example_prompt: str) -> None:
    """Which format the prompts had, and the first one exactly as the model read it."""
    if example_prompt:
        shown = example_prompt if len(example_prompt) <= 300 else example_prompt[:300] + "…"
        st.caption(f"Prompts as the model read them ({prompt_format}), e.g.: `{shown}`")


def run_caption(run: StoredRun) -> None:
    source = "served from the cache" if run.cached else f"computed in {run.duration_s:.1f} s"
    st.caption(
        f"Run `{run.run_id[:12]}` on {run.model_id}{'@' + run.revision if run.revision else ''} · {source} · "
        f"{run.device or '?'} / {run.dtype or '?'} · created {run.created_at:%Y-%m-%d %H:%M} UTC"
    )


def _apply_paper_settings(page: str, n_layers: int | None) -> None:
    """Fill the page's widgets with the chosen paper's settings (a callback: it runs before the widgets are drawn)."""
    st.session_state.update(published.preset_state(page, st.session_state.get(f"{page}-preset"), n_layers))


def paper_settings(page: str, n_layers: int | None = None) -> str | None:
    """The "Paper settings" select box of a probe page (key `<page>-preset`) and its "Apply" button: choosing a
    paper's settings fills the widgets, and "Apply" fills them again with the chosen settings after some were
    changed (choosing the same option again is no change, so the select box alone cannot); the button shows only
    while a paper's settings are chosen. `n_layers`: the model's layer count, for presets whose layers depend on it.
    Returns the chosen label."""
    choice, button = st.columns([5, 1], vertical_alignment="bottom")
    label = choice.selectbox(
        "Paper settings",
        published.preset_options(page),
        key=f"{page}-preset",
        on_change=_apply_paper_settings,
        args=(page, n_layers),
    )
    if published.preset(page, label) is not None:  # nothing to apply without a paper's settings: no button
        button.button(
            "Apply",
            key=f"{page}-preset-apply",
            on_click=_apply_paper_settings,
            args=(page, n_layers),
            help="Set the widgets to the chosen paper's settings again (after you changed some).",
        )
    return label


def paper_header(page: str, n_layers: int | None = None) -> dict | None:
    """A probe page's head row: "Paper settings" (`paper_settings`), the notes of the chosen paper's settings, and
    the switch for the published reference values; returns the references to draw (None when switched off)."""
    left, right = st.columns([2, 1], vertical_alignment="bottom")
    with left:
        preset = paper_settings(page, n_layers)
    shown = right.toggle("Show published reference values", value=True, key=f"{page}-references")
    for note in published.preset_notes(page, preset):
        st.info(note)
    return published.load_references() if shown else None


_leave_legacy_multipage_mode()
