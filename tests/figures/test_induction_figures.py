"""Induction figures (probes/figures/induction.py) on real probe results: the tiny random GPT-2, the embedded
organism's checkpoints and two short emergence trainings, each computed once per module."""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from probes.figures import Comparison, LabelledRun
from probes.figures import induction as figures
from probes.induction import attention, emergence, scores, sweep
from probes.models import ModelSpec, load_model

SCAN = scores.ScanConfig(seq_len=10, n_seqs=2)
ORGANISM_REVISIONS = ("step-750", "step-250")  # out of step order on purpose
TRAIN = {"steps": 20, "record_every": 10, "eval_seqs": 8, "batch_size": 8}


def labelled(label: str, probe: str, model_id: str, revision: str | None, result) -> LabelledRun:
    config = dict(result.config) if isinstance(result.config, dict) else {}
    return LabelledRun(label=label, run_id=f"run-{label}", probe=probe, model_id=model_id, revision=revision,
                       config=config, summary=result.summary(), tables=result.to_tables())  # fmt: skip


@pytest.fixture(scope="module")
def organism_runs() -> list[LabelledRun]:
    runs = []
    for revision in ORGANISM_REVISIONS:
        model = load_model(ModelSpec(name="organism", revision=revision, device="cpu"))
        runs.append(labelled(f"organism@{revision}", scores.NAME, "organism", revision, scores.run(model, SCAN)))
    return runs


@pytest.fixture(scope="module")
def tiny_run(tiny_model) -> LabelledRun:
    return labelled("tiny", scores.NAME, "tiny-gpt2", None, scores.run(tiny_model, SCAN))


@pytest.fixture(scope="module")
def training_runs() -> list[LabelledRun]:
    repeat = emergence.train(emergence.TrainConfig(seed=1, **TRAIN))
    bursty = emergence.train(emergence.bursty_config(n_classes=64, **TRAIN))
    return [labelled("repeat", emergence.NAME, "scratch", None, repeat),
            labelled("bursty", emergence.NAME, "scratch", None, bursty)]  # fmt: skip


def heads_matrix(run: LabelledRun, score: str = "induction") -> np.ndarray:
    return run.tables["head_scores"].pivot(index="layer", columns="head", values=score).to_numpy()


def assert_titled(figure, *axes: str) -> None:
    assert figure.layout.title.text
    for axis in axes:
        assert figure.layout[axis].title.text, axis


# --- the page's figures ----------------------------------------------------------------------------------


def test_module_imports_no_torch_streamlit_duckdb_or_cache():
    tree = ast.parse(Path(figures.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert {name.split(".")[0] for name in imported} <= {"__future__", "math", "re", "numpy", "pandas", "plotly",
                                                          "probes"}  # fmt: skip
    assert {name for name in imported if name.startswith("probes")} == {"probes.figures"}


@pytest.mark.parametrize("score", ["induction", "previous_token", "copying"])
def test_head_heatmap_draws_the_score_table(organism_runs, score):
    run = organism_runs[0]
    figure = figures.head_heatmap(run.tables["head_scores"], score)
    assert figure.layout.title.text == figures.SCORE_TITLES[score]
    assert (figure.layout.xaxis.title.text, figure.layout.yaxis.title.text) == ("Head", "Layer")
    heatmap, targets = figure.data
    np.testing.assert_array_equal(np.asarray(heatmap.z), heads_matrix(run, score))
    assert (heatmap.zmin, heatmap.zmax) == ((-1, 1) if score == "copying" else (0, 1))
    assert len(targets.x) == heads_matrix(run).size  # one click target per cell


def test_loss_figure_draws_each_half(organism_runs):
    losses = organism_runs[0].tables["loss_by_position"]
    figure = figures.loss_figure(losses, SCAN.seq_len)
    assert_titled(figure, "xaxis", "yaxis")
    assert figure.layout.yaxis.title.text == "Loss (nats)"
    assert [trace.name for trace in figure.data] == ["first half", "first repeated token half", "second half"]
    drawn = np.concatenate([np.asarray(trace.y) for trace in figure.data])
    assert sorted(drawn) == sorted(losses["loss"])
    assert figure.layout.shapes[0].x0 == SCAN.seq_len + 0.5


def test_attention_figure_draws_the_pattern_and_marks_targets(tiny_model):
    result = attention.run(tiny_model, attention.TextAttentionConfig(text="kaba dede kaba dede", layer=1, head=2))
    frame = result.to_frame()
    figure = figures.attention_figure(frame, result.tokens, 1, 2)
    assert figure.layout.title.text == "Attention pattern of L1H2 on your text"
    assert_titled(figure, "xaxis", "yaxis")
    z = np.asarray(figure.data[0].z, dtype=float)
    np.testing.assert_allclose(z[frame["query"], frame["key"]], frame["attention"])
    assert len(figure.data[1].x) == int(frame.induction_target.sum()) > 0


def test_repeat_emergence_figure(training_runs):
    history = training_runs[0].tables["history"]
    figure = figures.emergence_figure(history, "repeat", 10, TRAIN["steps"], 4, emergence.PHASE_THRESHOLD)
    assert figure.layout.title.text == figures.EMERGENCE_CHART_TITLE
    assert figure.layout.xaxis3.title.text == "Training step"
    for axis in ("yaxis", "yaxis2", "yaxis3"):
        assert figure.layout[axis].title.text
    assert tuple(figure.layout.xaxis.range) == (0, TRAIN["steps"])
    texts = [annotation.text for annotation in figure.layout.annotations]
    assert "Induction attention: top head (0-1) vs best layer (sum over its 4 heads, 0-4)" in texts
    assert "phase change (step 10)" in texts
    total = next(trace for trace in figure.data if trace.name == "best-layer total induction")
    assert list(total.x) == list(history.step) and list(total.y) == list(history.layer_induction_total)
    assert [shape.x0 for shape in figure.layout.shapes if shape.x0 == shape.x1] == [10, 10, 10]  # all three panels
    assert [shape.y0 for shape in figure.layout.shapes if shape.y0 == shape.y1] == [emergence.PHASE_THRESHOLD]
    unmarked = figures.emergence_figure(history, "repeat", None, TRAIN["steps"], 4, emergence.PHASE_THRESHOLD)
    assert len(unmarked.layout.shapes) == 1  # the threshold line only


def test_bursty_emergence_figure(training_runs):
    history = training_runs[1].tables["history"]
    figure = figures.emergence_figure(history, "bursty", None, TRAIN["steps"], 1, emergence.PHASE_THRESHOLD)
    assert figure.layout.title.text == figures.EMERGENCE_CHART_TITLE
    assert figure.layout.xaxis2.title.text == "Training step"
    assert figure.layout.yaxis.title.text == "Loss (nats)" and figure.layout.yaxis2.title.text
    assert len(figure.data) == 6
    icl = next(trace for trace in figure.data if trace.name == "icl accuracy")
    assert list(icl.y) == list(history.icl_accuracy)


def test_sweep_figure_by_step_and_by_name(organism_runs):
    def point(run, revision):
        scan = scores.ScanResult.from_stored(run.tables, run.summary, {})
        return sweep.SweepPoint(revision, sweep.revision_step(revision), run.run_id, scan)

    frame = sweep.sweep_frame([point(run, run.revision) for run in organism_runs])
    figure = figures.sweep_figure(frame)
    assert figure.layout.title.text == "Best induction score and loss vs training step"
    assert figure.layout.xaxis.title.text == "Training step"
    assert figure.layout.yaxis.title.text == "Best induction score (0-1)" and figure.layout.yaxis2.title.text
    assert list(figure.data[0].x) == [250, 750]
    assert list(figure.data[0].y) == list(frame.best_induction)
    with_final = sweep.sweep_frame([point(organism_runs[0], None), point(organism_runs[1], "step-250")])
    named = figures.sweep_figure(with_final)  # the final model has no step: x is the checkpoint names
    assert named.layout.xaxis.title.text == "Checkpoint"
    assert list(named.data[0].x) == ["step-250", "final"]


# --- comparing scan runs ---------------------------------------------------------------------------------


def test_comparisons_cover_both_probes():
    assert set(figures.COMPARISONS) == {"induction", "induction-emergence"}
    assert all(isinstance(comparison, Comparison) for comparison in figures.COMPARISONS.values())


@pytest.mark.parametrize("revision", ["step1000", "step-1000", "checkpoint-1000", None, "main"])
def test_checkpoint_step_parses_like_the_sweep(revision):
    assert figures.checkpoint_step(revision) == sweep.revision_step(revision)
    assert figures.checkpoint_step(revision) in (1000, None)


def test_score_grids_side_by_side_on_one_colour_scale(organism_runs, tiny_run):
    runs = [*organism_runs, tiny_run]
    grids = figures.COMPARISONS["induction"].figures(runs)[0]
    assert grids.layout.title.text.startswith(figures.SCORE_TITLES["induction"])
    assert grids.layout.xaxis.title.text == "Head" and grids.layout.yaxis.title.text == "Layer"
    assert [annotation.text for annotation in grids.layout.annotations] == [run.label for run in runs]
    assert len(grids.data) == len(runs)
    for trace, run in zip(grids.data, runs, strict=True):
        assert trace.coloraxis == "coloraxis"
        np.testing.assert_array_equal(np.asarray(trace.z), heads_matrix(run))
    assert (grids.layout.coloraxis.cmin, grids.layout.coloraxis.cmax) == (0, 1)


def test_checkpoints_of_one_model_give_a_curve_in_step_order(organism_runs, tiny_run):
    curve = figures.COMPARISONS["induction"].figures([*organism_runs, tiny_run])[1]
    assert curve.layout.title.text == "Top induction score vs training step"
    assert curve.layout.xaxis.title.text and curve.layout.yaxis.title.text == "Top induction score (0-1)"
    assert len(curve.data) == 1  # one model has checkpoints; the tiny model's final run has no step
    by_step = sorted(organism_runs, key=lambda run: figures.checkpoint_step(run.revision))
    assert curve.data[0].name == "organism"
    assert list(curve.data[0].x) == [250, 750]
    assert list(curve.data[0].y) == [run.summary["best_induction"]["score"] for run in by_step]
    assert "tiny" in curve.layout.annotations[0].text  # named as not on the curve


def test_checkpoints_of_two_models_give_two_lines(organism_runs, tiny_run):
    other = [replace(run, label=f"other {run.label}", model_id="organism-copy", tables=tiny_run.tables)
             for run in organism_runs]  # fmt: skip
    curve = figures.COMPARISONS["induction"].figures([*organism_runs, *other])[1]
    assert [trace.name for trace in curve.data] == ["organism", "organism-copy"]
    assert list(curve.data[1].y) == [tiny_run.summary["best_induction"]["score"]] * 2


def test_one_run_per_model_gives_bars(organism_runs, tiny_run):
    runs = [organism_runs[0], tiny_run]
    bars = figures.COMPARISONS["induction"].figures(runs)[1]
    assert bars.layout.title.text == "Top induction score per run"
    assert bars.layout.xaxis.title.text == "Run" and bars.layout.yaxis.title.text == "Top induction score (0-1)"
    assert len(bars.data) == 1 and list(bars.data[0].x) == ["organism@step-750", "tiny"]
    assert list(bars.data[0].y) == [run.summary["best_induction"]["score"] for run in runs]
    best = tiny_run.summary["best_induction"]
    assert bars.data[0].text[1] == f"L{best['layer']}H{best['head']}"


def test_scan_headline_matches_the_tables(organism_runs, tiny_run):
    for run in [*organism_runs, tiny_run]:
        headline = figures.COMPARISONS["induction"].headline(run)
        heads, best = run.tables["head_scores"], run.summary["best_induction"]
        assert headline["model"] == run.model_id
        assert headline["revision"] == (run.revision or "final")
        assert headline["top head"] == f"L{best['layer']}H{best['head']}"
        assert headline["top induction score"] == best["score"] == heads["induction"].max()
        assert headline["mean induction score"] == pytest.approx(heads["induction"].mean())
        top = heads[(heads["layer"] == best["layer"]) & (heads["head"] == best["head"])]
        assert headline["top head previous-token score"] == top["previous_token"].item()
        assert headline["ICL score (nats)"] == run.summary["icl_score"]


def test_scan_overlaid_has_one_block_per_run(organism_runs, tiny_run):
    runs = [*organism_runs, tiny_run]
    frame = figures.COMPARISONS["induction"].overlaid(runs)
    assert list(frame.columns[:4]) == ["run", "model_id", "revision", "step"]
    assert list(frame["run"].unique()) == [run.label for run in runs]
    for run in runs:
        block = frame[frame["run"] == run.label]
        heads = run.tables["head_scores"]
        assert len(block) == len(heads)
        assert set(block["model_id"]) == {run.model_id}
        pd.testing.assert_frame_equal(block[heads.columns].reset_index(drop=True), heads)
    assert list(frame.drop_duplicates("run")["step"].astype(object)) == [750, 250, pd.NA]


# --- comparing training runs -----------------------------------------------------------------------------


def test_training_curves_overlay_the_runs(training_runs):
    runs = [training_runs[0], replace(training_runs[0], label="repeat again")]  # two runs of one task
    figure = figures.COMPARISONS["induction-emergence"].figures(runs)[0]
    assert_titled(figure, "xaxis2", "yaxis", "yaxis2")
    assert figure.layout.yaxis.title.text == "Loss (nats)"
    assert len(figure.data) == 2 * len(runs)
    history = runs[0].tables["history"]
    loss, attention_trace = figure.data[0], figure.data[1]
    assert list(loss.x) == list(history.step) and list(loss.y) == list(history.loss)
    assert list(attention_trace.y) == list(history.layer_induction_total)
    assert [trace.name for trace in figure.data if trace.showlegend is not False] == ["repeat", "repeat again"]
    assert not figure.layout.shapes  # no phase change in 20 steps
    marked = replace(runs[0], summary={**runs[0].summary, "phase_change_step": 10})
    shapes = figures.COMPARISONS["induction-emergence"].figures([marked])[0].layout.shapes
    assert [shape.x0 for shape in shapes] == [10, 10]  # the phase step, across both panels


def test_training_curves_of_the_bursty_task_draw_the_top_head(training_runs):
    figure = figures.COMPARISONS["induction-emergence"].figures(training_runs)[0]
    assert list(figure.data[3].y) == list(training_runs[1].tables["history"].induction_score)
    assert figure.layout.yaxis2.title.text == "Induction attention (probability mass)"  # the tasks are mixed


def test_emergence_headline_matches_the_summary(training_runs):
    for run in training_runs:
        headline = figures.COMPARISONS["induction-emergence"].headline(run)
        final = run.summary["final"]
        assert headline["task"] == run.summary["task"]
        assert headline["phase change step"] == run.summary["phase_change_step"]
        assert headline["final step"] == TRAIN["steps"] == run.tables["history"].step.iloc[-1]
        assert headline["final loss (nats)"] == final["loss"] == run.tables["history"].loss.iloc[-1]
        assert headline["top-head induction score"] == final["induction_score"]
    repeat, bursty = (figures.COMPARISONS["induction-emergence"].headline(run) for run in training_runs)
    assert repeat["best-layer total induction"] == training_runs[0].summary["final"]["layer_induction_total"]
    assert bursty["ICL accuracy"] == training_runs[1].summary["final"]["icl_accuracy"]


def test_emergence_overlaid_has_one_block_per_run(training_runs):
    frame = figures.COMPARISONS["induction-emergence"].overlaid(training_runs)
    assert frame.columns[0] == "run"
    assert list(frame["run"].unique()) == ["repeat", "bursty"]
    for run in training_runs:
        history = run.tables["history"]
        block = frame[frame["run"] == run.label][history.columns].reset_index(drop=True)
        pd.testing.assert_frame_equal(block, history, check_dtype=False)


def test_no_runs_no_figures():
    for comparison in figures.COMPARISONS.values():
        assert comparison.figures([]) == []
        assert "run" in comparison.overlaid([]).columns
