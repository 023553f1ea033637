"""Optimizer-spectra figures (probes/figures/spectra.py): the page's figures and the compared runs, drawn from real
runs of the three probes at tiny sizes (memory K = 8, a one-layer transformer, two tiny GPT-2s)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import pytest

from probes.figures import Comparison, LabelledRun
from probes.figures import spectra as figures
from probes.models import ModelSpec, load_model
from probes.runtime import single_thread
from probes.spectra import memory, transformer, weights
from probes.wiring import REGISTRY
from tests.probes.test_spectra_transformer import TINY

ROOT = Path(__file__).resolve().parents[2]
MEMORY_A = memory.MemoryConfig(n_classes=8, d_model=8, steps=6)
MEMORY_B = memory.MemoryConfig(n_classes=8, d_model=8, steps=6, optimizers=("adam", "muon"), eps=0.5, lr_adam=0.1)
TRANSFORMER_A = replace(TINY, steps=8, batch_size=32, log_every=4)  # the probe tests' tiny model, 8 steps
TRANSFORMER_B = replace(TRANSFORMER_A, setups=("adam", "muon"), seed=1)


def labelled(label: str, probe: str, cfg, result, model_id: str = "synthetic", revision=None) -> LabelledRun:
    """A run as the compare view hands it over: the summary as stored (through JSON), the tables as computed."""
    return LabelledRun(
        label=label,
        run_id=f"{label}-run",
        probe=probe,
        model_id=model_id,
        revision=revision,
        config=asdict(cfg),
        summary=json.loads(json.dumps(result.summary())),
        tables=result.to_tables(),
    )


@pytest.fixture(scope="module")
def results(tiny_model, tmp_path_factory) -> dict:
    from probes.tiny import save_tiny_model

    other = load_model(
        ModelSpec(name=str(save_tiny_model(tmp_path_factory.mktemp("tiny-3"), n_layer=3, n_embd=32, seed=5)))
    )
    with single_thread():
        return {
            "memory": (memory.run(MEMORY_A), memory.run(MEMORY_B)),
            "transformer": (transformer.run(TRANSFORMER_A), transformer.run(TRANSFORMER_B)),
            "weights": (weights.run(tiny_model), weights.run(other)),
        }


@pytest.fixture(scope="module")
def runs(results) -> dict[str, list[LabelledRun]]:
    (mem_a, mem_b), (tr_a, tr_b), (wt_a, wt_b) = results["memory"], results["transformer"], results["weights"]
    return {
        memory.NAME: [labelled("A", memory.NAME, MEMORY_A, mem_a), labelled("B", memory.NAME, MEMORY_B, mem_b)],
        transformer.NAME: [
            labelled("A", transformer.NAME, TRANSFORMER_A, tr_a),
            labelled("B", transformer.NAME, TRANSFORMER_B, tr_b),
        ],
        weights.NAME: [
            labelled("A", weights.NAME, weights.WeightsConfig(), wt_a, "tiny-gpt2"),
            labelled("B", weights.NAME, weights.WeightsConfig(), wt_b, "tiny-gpt2-3", "step-10"),
        ],
    }


def assert_titled(figure: go.Figure) -> None:
    assert isinstance(figure, go.Figure)
    layout = figure.layout
    assert layout.title.text and layout.xaxis.title.text and layout.yaxis.title.text, layout


def same(values, expected) -> bool:
    """Equal as numbers, with NaN / None (a missing value) equal to each other."""
    values, expected = list(values), list(expected)
    missing = [v is None or (isinstance(v, float) and math.isnan(v)) for v in values]
    gone = [e is None or (isinstance(e, float) and math.isnan(e)) for e in expected]
    return missing == gone and all(v == e for v, e, m in zip(values, expected, missing, strict=True) if not m)


# ------------------------------------------------------------------------------------------- the page's figures


def test_memory_figures_draw_the_tables(results) -> None:
    result = results["memory"][0]
    classes = figures.class_probability_figure(result.classes, result.eps)
    assert classes.layout.title.text.startswith("Per-class probability over training")
    assert classes.layout.xaxis.title.text == "step" and classes.layout.yaxis.title.text
    lines = [t for t in classes.data if t.mode == "lines"]
    assert len(lines) == 4 * 8  # one line per optimizer and class
    gd = result.classes[(result.classes["optimizer"] == "gd") & (result.classes["class_index"] == 0)]
    assert list(lines[0].y) == list(gd["probability"])
    assert [shape.y0 for shape in classes.layout.shapes] == [1 - result.eps] * 4

    groups = figures.group_loss_figure(result.groups)
    assert_titled(groups)
    assert len(groups.data) == 2 * 4 and groups.data[1].name == "GD · tail"
    assert list(groups.data[1].y) == list(result.groups[result.groups["optimizer"] == "gd"]["tail_loss"])

    spectrum = figures.memory_spectrum_figure(result.spectrum, 3, "update", True)
    assert_titled(spectrum)
    assert spectrum.layout.title.text == "Singular values of the update W_t − W_(t−1) at step 3"
    assert spectrum.layout.yaxis.type == "log" and len(spectrum.data) == 4
    rows = result.spectrum
    muon = rows[(rows["optimizer"] == "muon") & (rows["step"] == 3) & (rows["matrix"] == "update")]
    assert spectrum.data[3].name == "Muon" and list(spectrum.data[3].y) == list(muon["singular_value"])

    iso = result.isotropy
    over = figures.isotropy_over_training_figure(iso[iso["matrix"] == "W"], "optimizer", "effective_rank", "Isotropy")
    assert_titled(over)
    assert over.layout.yaxis.title.text == "effective rank (count)" and len(over.data) == 4
    w = iso[(iso["matrix"] == "W") & (iso["optimizer"] == "adam")]
    assert same(over.data[2].y, w["effective_rank"])  # W = 0 at step 0 has no spectrum shape: NaN


def test_transformer_figures_draw_the_tables(results) -> None:
    result = results["transformer"][0]
    accuracy = figures.accuracy_figure(result.accuracy)
    assert_titled(accuracy)
    assert len(accuracy.data) == 3 * 3  # setups x head/middle/tail ("all" is left out)
    tail = result.accuracy[(result.accuracy["setup"] == "muon") & (result.accuracy["group"] == "tail")]
    assert list(next(t for t in accuracy.data if t.name == "Muon · tail").y) == list(tail["accuracy"])

    means = figures.mean_over_heads(result.isotropy, "W_VO", 0, "svd_entropy")
    iso = result.isotropy
    heads = iso[(iso["matrix"] == "W_VO") & (iso["layer"] == 0) & (iso["setup"] == "adam") & (iso["step"] == 8)]
    adam = means[(means["setup"] == "adam") & (means["step"] == 8)]
    assert float(adam["svd_entropy"].iloc[0]) == pytest.approx(heads["svd_entropy"].mean()) and len(heads) == 2
    assert figures.transformer_isotropy_title("W_VO", 0).endswith("(mean over heads)")

    spectrum = figures.transformer_spectrum_figure(result.spectrum, 8, 0, "W_VO")
    assert_titled(spectrum)
    assert spectrum.layout.title.text == "Singular values of W_VO in layer 0 at step 8"
    assert len(spectrum.data) == 3 * 2  # setups x heads
    assert figures.labelled(result.setups, "setup")["setup"].tolist() == ["Adam", "Muon", "Muon on VO+FFN"]


def test_loaded_model_figures_draw_one_or_two_models(results) -> None:
    first, second = results["weights"]
    single = figures.layer_metric_figure([("A", first.metrics)], "svd_entropy", ["W_V", "W_VO"])
    assert_titled(single)
    assert [t.name for t in single.data] == ["W_V · A", "W_VO · A"]
    vo = first.metrics[first.metrics["matrix"] == "W_VO"].groupby("layer")["svd_entropy"].mean()
    assert list(single.data[1].y) == list(vo)
    both = figures.layer_metric_figure([("A", first.metrics), ("B", second.metrics)], "svd_entropy", ["W_V", "W_VO"])
    assert len(both.data) == 4 and both.data[2].line.dash == "dash" and "dashed: second" in both.layout.title.text

    spectra = [("A", first.spectrum), ("B", second.spectrum)]
    spectrum = figures.model_spectrum_figure(spectra, 0, "W_V", normalise=True)
    assert_titled(spectrum)
    assert [t.name for t in spectrum.data] == [
        "A",
        "B",
    ] and spectrum.layout.yaxis.title.text == "singular value / largest"
    values = first.spectrum[(first.spectrum["layer"] == 0) & (first.spectrum["matrix"] == "W_V")]["singular_value"]
    assert list(spectrum.data[0].y) == list(values / values.max())


def test_figure_module_is_pure() -> None:
    """Importing the module loads neither torch nor Streamlit, DuckDB or the store."""
    modules = "{'torch', 'streamlit', 'duckdb', 'cache'}"
    code = f"import sys, probes.figures.spectra; print(sorted(set(sys.modules) & {modules}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"


def test_copied_constants_match_the_probes() -> None:
    assert figures.MATRICES == weights.MATRICES
    assert set(memory.OPTIMIZERS) | set(transformer.SETUPS) <= set(figures.LABELS) == set(figures.COLORS)


# ------------------------------------------------------------------------------------------- compared runs


def test_comparisons_cover_the_three_probes() -> None:
    assert set(figures.COMPARISONS) == {memory.NAME, transformer.NAME, weights.NAME} <= set(REGISTRY)
    assert all(isinstance(c, Comparison) for c in figures.COMPARISONS.values())


def test_memory_comparison(runs) -> None:
    compared = runs[memory.NAME]
    balance, worst = figures.COMPARISONS[memory.NAME].figures(compared)
    for figure in (balance, worst):
        assert_titled(figure)
    assert [t.type for t in balance.data] == ["bar", "bar"] and [t.name for t in balance.data] == ["A", "B"]
    assert balance.layout.barmode == "group"
    for bars, run in zip(balance.data, compared, strict=True):
        table = run.tables["optimizers"]
        assert list(bars.x) == [figures.optimizer_label(o) for o in table["optimizer"]]
        assert same(bars.y, table["balance"])
    assert any(v is not None for v in balance.data[0].y) and any(v is None for v in balance.data[0].y)

    assert len(worst.data) == 4 + 2  # one line per optimizer of each run
    assert [t.line.dash for t in worst.data] == ["solid"] * 4 + ["dash"] * 2
    groups = compared[1].tables["groups"]
    assert worst.data[5].name == "Muon · B"
    assert list(worst.data[5].y) == list(groups[groups["optimizer"] == "muon"]["worst_probability"])

    headline = figures.COMPARISONS[memory.NAME].headline
    for run in compared:
        values = headline(run)
        assert values["ε"] == run.config["eps"] and values["classes"] == 8
        table = run.tables["optimizers"].set_index("optimizer")
        expected = {f"balance · {figures.optimizer_label(o)}": table.loc[o, "balance"] for o in table.index}
        assert set(values) == {"ε", "classes", *expected}
        assert same([values[k] for k in expected], expected.values())
        assert same(expected.values(), [run.summary["optimizers"][o]["balance"] for o in table.index])

    frame = figures.COMPARISONS[memory.NAME].overlaid(compared)
    sizes = [len(run.tables["groups"]) for run in compared]
    assert frame.columns[0] == "run" and list(frame["run"]) == ["A"] * sizes[0] + ["B"] * sizes[1]
    assert list(frame["worst_probability"]) == [
        *compared[0].tables["groups"]["worst_probability"],
        *groups["worst_probability"],
    ]
    gd = frame[(frame["run"] == "A") & (frame["optimizer"] == "gd")]
    assert same(set(gd["balance"]), [compared[0].tables["optimizers"].set_index("optimizer").loc["gd", "balance"]])


def test_transformer_comparison(runs) -> None:
    compared = runs[transformer.NAME]
    (figure,) = figures.COMPARISONS[transformer.NAME].figures(compared)
    assert_titled(figure)
    assert [t.name for t in figure.data] == ["Adam · A", "Muon · A", "Muon on VO+FFN · A", "Adam · B", "Muon · B"]
    assert [t.line.dash for t in figure.data] == ["solid"] * 3 + ["dash"] * 2
    accuracy = compared[1].tables["accuracy"]
    tail = accuracy[(accuracy["group"] == "tail") & (accuracy["setup"] == "muon")]
    assert list(figure.data[4].x) == list(tail["step"]) and list(figure.data[4].y) == list(tail["accuracy"])

    headline = figures.COMPARISONS[transformer.NAME].headline(compared[0])
    setups = compared[0].tables["setups"].set_index("setup")
    assert headline == {
        "steps": 8,
        "final tail accuracy · Adam": setups.loc["adam", "tail_accuracy"],
        "final tail accuracy · Muon": setups.loc["muon", "tail_accuracy"],
        "final tail accuracy · Muon on VO+FFN": setups.loc["muon_vo_ffn", "tail_accuracy"],
    }
    last = compared[0].tables["accuracy"]
    last = last[(last["group"] == "tail") & (last["step"] == 8)].set_index("setup")["accuracy"]
    assert headline["final tail accuracy · Muon"] == last["muon"]

    frame = figures.COMPARISONS[transformer.NAME].overlaid(compared)
    assert set(frame["group"]) == {"tail"} and list(frame.columns) == ["run", *accuracy.columns]
    n_a = len(compared[0].tables["accuracy"].query("group == 'tail'"))
    assert list(frame["run"]) == ["A"] * n_a + ["B"] * len(accuracy.query("group == 'tail'"))


def test_weights_comparison(runs) -> None:
    compared = runs[weights.NAME]
    assert figures.default_layer_matrix(compared) == (0, "W_V")
    spectrum, entropy = figures.COMPARISONS[weights.NAME].figures(compared)
    for figure in (spectrum, entropy):
        assert_titled(figure)
        assert [t.name for t in figure.data] == ["A", "B"]
    assert (
        "W_V in layer 0" in spectrum.layout.title.text
        and spectrum.layout.yaxis.title.text == "singular value / largest"
    )
    for line, run in zip(spectrum.data, compared, strict=True):
        table = run.tables["spectrum"]
        values = table[(table["layer"] == 0) & (table["matrix"] == "W_V")]["singular_value"]
        assert list(line.y) == list(values / values.max()) and line.y[0] == 1.0
    assert len(spectrum.data[0].y) == 64 and len(spectrum.data[1].y) == 32  # d_model 64 and 32
    assert entropy.layout.yaxis.title.text == figures.METRIC_LABELS["svd_entropy"]
    for line, run in zip(entropy.data, compared, strict=True):
        metrics = run.tables["metrics"]
        w_v = metrics[metrics["matrix"] == "W_V"]
        assert list(line.x) == list(w_v["layer"]) and list(line.y) == list(w_v["svd_entropy"])
    assert len(entropy.data[1].x) == 3  # the second model has three layers

    headline = figures.COMPARISONS[weights.NAME].headline(compared[1])
    assert headline["model"] == "tiny-gpt2-3@step-10" and headline["layers"] == 3
    metrics = compared[1].tables["metrics"]
    for matrix in ("W_V", "W_VO", "W_out"):
        part = metrics[metrics["matrix"] == matrix]
        assert headline[f"{matrix} mean entropy"] == pytest.approx(part["svd_entropy"].mean())
        assert headline[f"{matrix} mean effective rank"] == pytest.approx(part["effective_rank"].mean())
        assert headline[f"{matrix} mean entropy"] == compared[1].summary["matrices"][matrix]["svd_entropy"]

    frame = figures.COMPARISONS[weights.NAME].overlaid(compared)
    a, b = (run.tables["spectrum"] for run in compared)
    assert list(frame["run"]) == ["A"] * len(a) + ["B"] * len(b)
    pd.testing.assert_frame_equal(frame.iloc[: len(a)].drop(columns="run"), a)
