"""Induction heads: scan the sidebar's model, watch heads emerge while a small model trains, sweep checkpoints."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from cache.jobs import Job
from pages.common import (
    USER_ERRORS,
    about_box,
    background_job,
    cached_lookup,
    cached_run,
    current_spec,
    export_buttons,
    get_model,
    job_plan,
    job_records,
    paper_header,
    request_for,
    run_caption,
    show_error,
)
from probes.defaults import ENGLISH_DATA_DIR, organism_data_dir, uses_english_defaults
from probes.figures import induction as figures
from probes.induction import attention, emergence, scores, sweep
from probes.models import ModelSpec
from probes.wiring import result_of

START_LABEL = "Start training"
SWEEP_LABEL = "Run sweep"


st.title("Induction heads")
about_box(*figures.about_text(emergence.PHASE_THRESHOLDS["repeat"], emergence.PHASE_THRESHOLDS["bursty"]))
references = paper_header("induction")

scan_tab, emergence_tab, sweep_tab = st.tabs(["Scan", "Emergence", "Checkpoint sweep"])


# --- scan ------------------------------------------------------------------------------------------------


def scan_section() -> None:
    defaults = scores.ScanConfig()
    left, middle, right, extra = st.columns(4)
    seq_len = left.number_input("Random tokens per half (T)", 4, 1024, defaults.seq_len, key="induction_seq_len")
    n_seqs = middle.number_input("Sequences", 1, 256, defaults.n_seqs, key="induction_n_seqs")
    seed = right.number_input("Seed", 0, 2**31 - 1, defaults.seed, key="induction_seed")
    prepend_bos = extra.checkbox("Prepend BOS", defaults.prepend_bos, key="induction_bos")
    copying = extra.checkbox("Copying score", defaults.copying, key="induction_copying")
    cfg = scores.ScanConfig(seq_len=int(seq_len), n_seqs=int(n_seqs), seed=int(seed), prepend_bos=prepend_bos,
                            copying=copying)  # fmt: skip
    run = cached_run(scores.NAME, cfg, label="Scanning every head")
    if run is None:
        return
    run_caption(run)
    result: scores.ScanResult = result_of(run)
    heads = result.to_frame()
    best_layer, best_head, best_score = result.best_head()
    first_half, second_half = result.half_losses()
    columns = st.columns(5)
    columns[0].metric("Top induction head", f"L{best_layer}H{best_head}")
    columns[1].metric("Its induction score", f"{best_score:.3f}", help=figures.SCORE_HELP["induction"])
    columns[2].metric("ICL score (nats)", f"{result.icl_score:+.3f}", help="loss on the repeated half minus "
                      "loss on the first half; negative = the model learns in context")  # fmt: skip
    columns[3].metric("Loss, first half (nats)", f"{first_half:.3f}")
    columns[4].metric("Loss, repeated half (nats)", f"{second_half:.3f}")
    shown = [score for score in figures.SCORE_TITLES if score in result.measured_scores()]
    for row in range(0, len(shown), 2):
        cells = st.columns(2)
        for cell, score in zip(cells, shown[row : row + 2], strict=False):
            cell.plotly_chart(figures.head_heatmap(heads, score), width="stretch", key=f"induction_heatmap_{score}",
                              on_select="rerun", selection_mode="points")  # fmt: skip
            cell.caption(figures.SCORE_HELP[score])
    st.subheader("Top heads by induction score")
    top = result.top_heads()
    st.caption("Click a heatmap cell or select a row to look at that head on your own text below.")
    picked = st.dataframe(top, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row",
                          key="induction_top_table")  # fmt: skip
    st.plotly_chart(figures.loss_figure(result.loss_frame(), result.seq_len), width="stretch",
                    key="induction_loss_curve")  # fmt: skip
    export_buttons(run, key_prefix="induction-scan")
    layer, head = chosen_head(top, picked)
    text_attention_section(result, layer, head, prepend_bos)


def chosen_head(top: pd.DataFrame, picked) -> tuple[int, int]:
    """The clicked heatmap cell, else the selected table row, else the top induction head."""
    for score in figures.SCORE_TITLES:
        points = (st.session_state.get(f"induction_heatmap_{score}") or {}).get("selection", {}).get("points", [])
        if points:
            return int(points[0]["y"]), int(points[0]["x"])
    rows = picked.selection.rows if picked and picked.selection else []
    chosen = top.iloc[rows[0]] if rows else top.iloc[0]
    return int(chosen["layer"]), int(chosen["head"])


ENGLISH_TEXT_FILE = ENGLISH_DATA_DIR / "induction_text.txt"  # the project's English default (a repeated clause)
FALLBACK_TEXT = "The cat sat on the mat. The cat sat on the mat."


def english_text() -> str:
    try:
        return " ".join(ENGLISH_TEXT_FILE.read_text(encoding="utf-8").split()) or FALLBACK_TEXT
    except OSError:
        return FALLBACK_TEXT


def default_text() -> str:
    """A repeated passage for the model: the project's English text (probes/data/english/induction_text.txt) for
    every model but an organism-like one (probes.defaults), which reads only its own word-level vocabulary and gets
    a repeated fact from its data/facts.csv, else a repeated run of words from its vocabulary."""
    try:
        spec = current_spec()
        if uses_english_defaults(spec):
            return english_text()
        facts = organism_data_dir(spec) / "facts.csv"
        if facts.is_file():
            first = pd.read_csv(facts).iloc[0]
            sentence = f"{first['fact_prompt']} {first['answer']} ."
            return f"{sentence} {sentence}"
        model = get_model()
        vocab, special = scores.sampling_vocabulary(model)
        return model.tokenizer.decode(scores.repeated_random_tokens(vocab, special, 1, 10, None, seed=0)[0])
    except (*USER_ERRORS, KeyError, OSError):
        return english_text()


def text_attention_section(scan: scores.ScanResult, layer: int, head: int, prepend_bos: bool) -> None:
    st.subheader("One head on your own text")
    left, right = st.columns(2)
    layer = left.number_input("Layer", 0, scan.n_layers - 1, layer, key=f"induction_layer_{layer}_{head}")
    head = right.number_input("Head", 0, scan.n_heads - 1, head, key=f"induction_head_{layer}_{head}")
    text = st.text_area("Text (repeat a phrase to see induction)", default_text(), key="induction_text", height=90)
    if not text.strip():
        st.info("Type a text to see the head's attention pattern.")
        return
    cfg = attention.TextAttentionConfig(text=text, layer=int(layer), head=int(head), prepend_bos=prepend_bos)
    run = cached_run(attention.NAME, cfg, label="Reading the attention pattern")
    if run is None:
        return
    pattern: attention.TextAttentionResult = result_of(run)
    share = pattern.induction_attention()
    if share is not None:
        st.caption(f"On tokens that occurred before, L{layer}H{head} puts {share:.0%} of its attention on the token "
                   "after the earlier occurrence (red squares).")  # fmt: skip
    st.plotly_chart(figures.attention_figure(pattern.to_frame(), pattern.tokens, int(layer), int(head)),
                    width="stretch", key="induction_text_attention")  # fmt: skip


# --- emergence -------------------------------------------------------------------------------------------


def emergence_config() -> emergence.TrainConfig:
    task = st.radio("Task", emergence.TASKS, horizontal=True, key="induction_task",
                    format_func={"repeat": "Repeated random tokens (Olsson)",
                                 "bursty": "Bursty in-context classification (Reddy)"}.get)  # fmt: skip
    base = emergence.TrainConfig() if task == "repeat" else emergence.bursty_config()
    left, middle, right = st.columns(3)
    steps = left.number_input("Training steps", 50, 50_000, base.steps, step=50, key=f"induction_steps_{task}")
    seed = middle.number_input("Seed", 0, 2**31 - 1, base.seed, key=f"induction_train_seed_{task}")
    record_every = right.number_input("Record every (steps)", 10, 5_000, base.record_every, step=10,
                                      key=f"induction_record_{task}")  # fmt: skip
    overrides = {"steps": int(steps), "seed": int(seed), "record_every": int(record_every)}
    if task == "repeat":
        return emergence.TrainConfig(**overrides)
    st.caption("Data parameters (Reddy): more classes, burstiness and Zipf skew favour in-context learning; "
               "few classes or B = 0 favour in-weights learning. With B = 4 the model first learns to pick one of the "
               "context's labels (ICL ≈ 1/(N/B)); the full in-context transition can need more steps than the "
               "default, so raise 'Training steps' to see it.")  # fmt: skip
    columns = st.columns(3)
    overrides["n_classes"] = columns[0].select_slider("Classes K", [2**k for k in range(4, 14)], base.n_classes,
                                                      key="induction_k")  # fmt: skip
    overrides["n_pairs"] = columns[1].select_slider("Context pairs N", [4, 8, 16], base.n_pairs, key="induction_n")
    overrides["burstiness"] = columns[2].select_slider("Burstiness B", [b for b in (0, 1, 2, 4, 8, 16)
                                                       if b <= overrides["n_pairs"]], base.burstiness,
                                                       key="induction_b")  # fmt: skip
    columns = st.columns(3)
    overrides["p_bursty"] = columns[0].slider("Bursty fraction p_B", 0.0, 1.0, base.p_bursty, 0.05, key="induction_pb")
    overrides["p_novel"] = columns[1].slider("Novel-class fraction p_C", 0.0, 1.0, base.p_novel, 0.05,
                                             key="induction_pc")  # fmt: skip
    overrides["zipf_alpha"] = columns[2].slider("Zipf exponent α", 0.0, 2.0, base.zipf_alpha, 0.1, key="induction_a")
    return emergence.bursty_config(**overrides)


def emergence_section() -> None:
    try:
        cfg = emergence_config()
        if cfg.task == "bursty":
            cfg.bursty_spec().validate()
    except USER_ERRORS as error:
        show_error(error)
        return
    stored = cached_lookup(emergence.NAME, cfg)
    if stored is None:
        st.caption("This configuration has not been trained yet. Training runs as a background job (a worker process "
                   "on the machine serving this page, or the Ray cluster set in the sidebar); the chart updates as "
                   "records arrive, and the finished run is cached.")  # fmt: skip
        plan = job_plan(f"Emergence training ({cfg.task}, {cfg.steps} steps)", (request_for(emergence.NAME, cfg),))
        background_job(plan, START_LABEL, "induction_start_training", live=live_emergence_chart,
                       restore=use_training_settings)  # fmt: skip
        return
    chart = st.empty()
    result: emergence.EmergenceResult = result_of(stored)
    phase = result.phase_change_step
    chart.plotly_chart(figures.emergence_figure(result.to_frame(), cfg.task, phase, cfg.steps, cfg.n_heads,
                                                emergence.PHASE_THRESHOLD, references), width="stretch",
                       key="induction_emergence_chart")  # fmt: skip
    run_caption(stored)
    final = result.final
    metric = result.phase_metric
    if cfg.task == "repeat":
        repeat_final_metrics(final, phase)
    st.markdown(
        f"**Phase change:** {'step ' + str(phase) if phase is not None else 'none detected'} "
        f"(rule: steepest rise of the smoothed {figures.PHASE_METRIC_LABELS[metric]}; threshold "
        f"{result.phase_threshold}). Final {figures.PHASE_METRIC_LABELS[metric]}: {final[metric]:.3f}."
    )
    st.dataframe(result.final_heads, hide_index=True, width="stretch")
    export_buttons(stored, key_prefix="induction-emergence")


def repeat_final_metrics(final: dict, phase: int | None) -> None:
    columns = st.columns(4)
    columns[0].metric("Phase change (step)", "none" if phase is None else str(phase))
    columns[1].metric("Top-head induction score", f"{final['induction_score']:.3f}",
                      help="the single head with the most attention on the induction offset (0-1)")  # fmt: skip
    columns[2].metric(f"Layer {final['best_layer']} total induction", f"{final['layer_induction_total']:.3f}",
                      help="attention on the induction offset summed over the heads of the best layer "
                           "(0 to the number of heads); catches copying split over heads")  # fmt: skip
    columns[3].metric("Loss ratio (repeated / first half)", f"{final['loss_ratio']:.3f}",
                      help="1 = the repeat is no easier than the first half; 0 = copied perfectly")  # fmt: skip


BURSTY_WIDGETS = {"n_classes": "induction_k", "n_pairs": "induction_n", "burstiness": "induction_b",
                  "p_bursty": "induction_pb", "p_novel": "induction_pc", "zipf_alpha": "induction_a"}  # fmt: skip


def use_training_settings(job: Job) -> None:
    """Button callback: the emergence widgets take a training job's settings (before they are drawn)."""
    cfg = job.config["steps"][0]["config"]
    task = cfg["task"]
    state = st.session_state
    state["induction_task"] = task
    state[f"induction_steps_{task}"] = cfg["steps"]
    state[f"induction_train_seed_{task}"] = cfg["seed"]
    state[f"induction_record_{task}"] = cfg["record_every"]
    if task == "bursty":
        state.update({widget: cfg[field] for field, widget in BURSTY_WIDGETS.items()})


def live_emergence_chart(job: Job) -> None:
    """The curve a training job has recorded so far (read from the job's history, so a reopened page shows it)."""
    records = job_records(job)
    if not records:
        return
    cfg = job.config["steps"][0]["config"]
    live = figures.emergence_figure(pd.DataFrame(records), cfg["task"], None, cfg["steps"], cfg["n_heads"],
                                    emergence.PHASE_THRESHOLD, references)  # fmt: skip
    st.plotly_chart(live, width="stretch", key=f"induction_live_chart_{job.job_id[:8]}")


# --- checkpoint sweep ------------------------------------------------------------------------------------


def sweep_section() -> None:
    spec = current_spec()
    suggested = sweep.default_revisions(spec.name)
    local = sweep.local_model_folder(spec.name) is not None
    listed = sweep.catalog_revisions(spec.name)  # the model catalog's checkpoints of a known hub model (Pythia)
    if local:
        note = "Its saved checkpoints are listed below."
    elif listed:
        note = (f"The model catalog lists its {len(listed)} hub checkpoints ({listed[0]} … {listed[-1]}); below is a "
                f"log-spaced subset of {len(suggested)}. Edit it, or sweep them all.")  # fmt: skip
    else:
        note = "List hub revisions, e.g. Pythia step numbers: 0, 512, 1000, 2000, 4000, final."
    st.caption(f"Model: **{spec.name}**. {note}")
    default = ", ".join(r or sweep.FINAL for r in suggested) if local or listed else "0, 512, 1000, 2000, 4000, final"
    every = bool(listed) and st.checkbox(f"All {len(listed)} checkpoints", key=f"induction_all_revisions_{spec.name}",
                                   help="Each checkpoint is a separate download and scan.")  # fmt: skip
    text = st.text_input("Checkpoints (comma-separated)", default, key=f"induction_revisions_{spec.name}",
                         disabled=bool(every))  # fmt: skip
    revisions = list(listed) if every else sweep.parse_revisions(text)
    defaults = scores.ScanConfig()
    cfg = scores.ScanConfig(seq_len=defaults.seq_len, n_seqs=defaults.n_seqs, seed=defaults.seed, copying=False)
    specs = [ModelSpec(spec.name, revision, spec.device, spec.dtype, spec.trust_remote_code) for revision in revisions]
    points, missing = [], []
    for revision, checkpoint in zip(revisions, specs, strict=True):
        run = cached_lookup(scores.NAME, cfg, spec=checkpoint)
        if run is None:
            missing.append(revision or sweep.FINAL)
            continue
        points.append(sweep.SweepPoint(revision, sweep.revision_step(revision), run.run_id, result_of(run)))
    if missing:
        shown = ", ".join(missing[:12]) + (f" and {len(missing) - 12} more" if len(missing) > 12 else "")
        st.info(f"Not scanned yet: {shown}. '{SWEEP_LABEL}' scans them in a background job (each checkpoint is "
                "cached on its own as it finishes, so an interrupted sweep resumes where it stopped).")  # fmt: skip
        requests = tuple(request_for(scores.NAME, cfg, spec=checkpoint) for checkpoint in specs)
        plan = job_plan(f"Checkpoint sweep of {spec.name} ({len(revisions)} checkpoints)", requests)
        background_job(plan, SWEEP_LABEL, "induction_run_sweep")
    if not points:
        return
    frame = sweep.sweep_frame(points, final=sweep.final_step(spec.name))
    st.plotly_chart(figures.sweep_figure(frame), width="stretch", key="induction_sweep_chart")
    st.dataframe(frame, hide_index=True, width="stretch")
    st.download_button("Export sweep CSV", frame.to_csv(index=False).encode(), file_name="induction-sweep.csv",
                       mime="text/csv", key="induction_sweep_csv")  # fmt: skip


with scan_tab:
    scan_section()
with emergence_tab:
    emergence_section()
with sweep_tab:
    sweep_section()
