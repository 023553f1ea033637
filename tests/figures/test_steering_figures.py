"""Steering figures (probes/figures/steering.py): the page's figures and the compared runs, drawn from real runs of
the probe on the embedded organism (two vector builds, two sweeps; a few seconds in all)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import pytest

from probes.figures import Comparison, LabelledRun
from probes.figures import steering as figures
from probes.models import ModelSpec, load_model
from probes.runtime import single_thread
from probes.steering import (
    NAME,
    VECTORS_NAME,
    SweepConfig,
    VectorConfig,
    build_vectors,
    organism_prompt_sets,
    run_sweep,
)
from probes.wiring import REGISTRY

ROOT = Path(__file__).resolve().parents[2]

SWEEP_A = SweepConfig(strengths=(-2.0, 0.0, 2.0), n_facts=8, max_new_tokens=4, n_diversity_prompts=0)
SWEEP_B = SweepConfig(
    strengths=(-1.0, 0.0, 1.0, 3.0),
    n_facts=8,
    max_new_tokens=6,
    n_diversity_prompts=0,
    random_baseline=False,
    collapse_ratio=0.9,  # the organism's text collapses by +3 at this threshold: a recorded collapse
)


def labelled(label: str, probe: str, cfg, result, revision: str | None = None) -> LabelledRun:
    """A run as the compare view hands it over: the summary as stored (through JSON), the tables as computed."""
    return LabelledRun(
        label=label,
        run_id=f"{label}-run",
        probe=probe,
        model_id="organism",
        revision=revision,
        config=asdict(cfg),
        summary=json.loads(json.dumps(result.summary())),
        tables=result.to_tables(),
    )


@pytest.fixture(scope="module")
def runs() -> dict[str, list[LabelledRun]]:
    with single_thread():  # small matrices: one thread is many times faster on a shared CPU
        return compute_runs()


def compute_runs() -> dict[str, list[LabelledRun]]:
    model = load_model(ModelSpec(name="organism", device="cpu"))
    sets = organism_prompt_sets()  # a slice of them, to stay fast
    sets = replace(sets, faithful=sets.faithful[:32], associative=sets.associative[:32], facts=sets.facts[:16])
    centroid_cfg = VectorConfig(unit_prompts=16).resolved(model.cfg.n_layers)
    residual_cfg = VectorConfig(layers=(1, 2), unit="residual", pairing="matched").resolved(model.cfg.n_layers)
    centroid = build_vectors(model, centroid_cfg, sets, "organism")
    residual = build_vectors(model, residual_cfg, sets, "organism")
    sweep_a = run_sweep(model, SWEEP_A.resolved(centroid.vectors.layers), centroid.vectors, sets)
    sweep_b = run_sweep(model, SWEEP_B.resolved(residual.vectors.layers), residual.vectors, sets)
    return {
        "vectors": [
            labelled("A", VECTORS_NAME, centroid_cfg, centroid),
            labelled("B", VECTORS_NAME, residual_cfg, residual, "step-1"),
        ],
        "sweeps": [
            labelled("A", NAME, SWEEP_A, sweep_a),
            labelled("B", NAME, SWEEP_B, sweep_b, "step-1"),
        ],
    }


def titles(figure: go.Figure) -> tuple[str, str, str]:
    layout = figure.layout
    return layout.title.text, layout.xaxis.title.text, layout.yaxis.title.text


def assert_titled(figure: go.Figure) -> None:
    assert isinstance(figure, go.Figure)
    assert all(titles(figure)), titles(figure)


def flexac(run: LabelledRun) -> pd.DataFrame:
    rows = run.tables["sweep"]
    return rows[rows["direction"] == "flexac"].sort_values("strength")


def trace(figure: go.Figure, name: str):
    found = [t for t in figure.data if t.name == name]
    assert len(found) == 1, [t.name for t in figure.data]
    return found[0]


# ------------------------------------------------------------------------------------------- the page's figures


def test_per_layer_figure_draws_separability_and_relative_norm(runs) -> None:
    run = runs["vectors"][1]
    table, layers = run.tables["per_layer"], run.summary["layers"]
    figure = figures.per_layer_figure(table, layers)
    assert_titled(figure)
    assert figure.layout.yaxis2.title.text == "‖v_l‖ / mean ‖h_l‖ (ratio)"
    bars, norms = figure.data
    assert list(bars.y) == list(table["separability"]) and list(norms.y) == list(table["relative_norm"])
    red = [layer for layer, colour in zip(bars.x, bars.marker.color, strict=True) if colour == "#d62728"]
    assert red == layers == [1, 2]


def test_sweep_figure_draws_every_metric_of_both_directions(runs) -> None:
    run = runs["sweeps"][0]
    rows, summary = run.tables["sweep"], run.summary
    figure = figures.sweep_figure(rows, summary["collapse"], summary["creativity_metric"], "centroid")
    assert_titled(figure)
    assert figures.AXIS_UNITS["centroid"] in figure.layout.xaxis.title.text
    assert len(figure.data) == 4 + 3  # FlexAC: four metrics; random: no answer probability
    faithful = trace(figure, "faithfulness (fact accuracy) · FlexAC")
    assert list(faithful.x) == list(flexac(run)["strength"]) and list(faithful.y) == list(flexac(run)["faithfulness"])
    random = rows[rows["direction"] == "random"].sort_values("strength")
    assert list(trace(figure, "distinct-2 · random (matched norm)").y) == list(random["distinct_2"])
    assert not figure.layout.shapes  # no collapse in this range


def test_sweep_figure_marks_a_recorded_collapse(runs) -> None:
    run = runs["sweeps"][1]
    collapse = run.summary["collapse"]
    positive = collapse["flexac"]["positive"]
    assert positive is not None and collapse["flexac"]["negative"] is None
    figure = figures.sweep_figure(run.tables["sweep"], collapse, run.summary["creativity_metric"], "residual")
    assert [shape.x0 for shape in figure.layout.shapes] == [positive]
    assert figure.layout.annotations[0].text == f"collapse at {positive:+g}"
    assert len([t for t in figure.data if len(t.y)]) == 4  # no random control in this run: its lines are empty
    assert figures.AXIS_UNITS["residual"] in figure.layout.xaxis.title.text


def test_captions_and_parsing(runs) -> None:
    metadata = runs["vectors"][0].summary
    shift = metadata["output_shift"]
    assert f"{shift['1.0']:.0%}" in figures.unit_caption(
        metadata
    ) and "Strength unit: centroid" in figures.unit_caption(metadata)
    assert "no strength-unit measurement" in figures.unit_caption({})
    assert figures.parse_strengths(" -2, 0 ,3.5,") == (-2.0, 0.0, 3.5)
    with pytest.raises(ValueError, match="Sweep strengths must be numbers separated by commas, got '1,two'."):
        figures.parse_strengths("1,two")
    assert figures.grid(-4.0, 4.0, 0.5) == tuple(x / 2 for x in range(-8, 9))
    collapse = runs["sweeps"][1].summary["collapse"]["flexac"]
    collapsed = figures.sweep_caption(collapse, 8, "associative_share", 6, 0.9)
    assert (
        f"positive side at {collapse['positive']:+g}" in collapsed
        and "on 8 facts" in collapsed
        and "0.9 ×" in collapsed
    )
    assert "none in this range" in figures.sweep_caption(
        runs["sweeps"][0].summary["collapse"]["flexac"], 8, "x", 4, 0.5
    )
    row = runs["sweeps"][0].tables["sweep"].iloc[0]
    assert figures.generation_caption(row) == (
        f"associative share {row['associative_share']:.2f} · distinct-2 {row['distinct_2']:.2f}"
    )
    assert figures.coverage_reminder(0.25).startswith("Only 25% of the prompt sets' words")


def test_figure_module_is_pure() -> None:
    """Importing the module loads neither torch nor Streamlit, DuckDB or the store."""
    modules = "{'torch', 'streamlit', 'duckdb', 'cache'}"
    code = f"import sys, probes.figures.steering; print(sorted(set(sys.modules) & {modules}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"


# ------------------------------------------------------------------------------------------- compared runs


def test_comparisons_cover_the_two_probes() -> None:
    assert set(figures.COMPARISONS) == {NAME, VECTORS_NAME} <= set(REGISTRY)
    assert all(isinstance(c, Comparison) for c in figures.COMPARISONS.values())


def test_sweep_comparison_overlays_one_line_per_run(runs) -> None:
    sweeps = runs["sweeps"]
    faithfulness, creativity = figures.COMPARISONS[NAME].figures(sweeps)
    for figure, column in ((faithfulness, "faithfulness"), (creativity, "creativity")):
        assert_titled(figure)
        solid = [t for t in figure.data if t.line.dash == "solid"]
        dotted = [t for t in figure.data if t.line.dash == "dot"]
        assert [t.name for t in solid] == ["A · FlexAC", "B · FlexAC"]
        assert [t.name for t in dotted] == ["A · random (matched norm)"]  # only run A has the random control
        for line, run in zip(solid, sweeps, strict=True):
            assert list(line.x) == list(flexac(run)["strength"]) and list(line.y) == list(flexac(run)[column])
        rows = sweeps[0].tables["sweep"]
        assert list(dotted[0].y) == list(rows[rows["direction"] == "random"].sort_values("strength")[column])
    assert "faithfulness" in faithfulness.layout.title.text and "creativity" in creativity.layout.title.text
    assert "associative_share" in creativity.layout.yaxis.title.text
    axis = faithfulness.layout.xaxis.title.text  # the two runs use different units: each is named
    assert "A: " + figures.AXIS_UNITS["centroid"] in axis and "B: " + figures.AXIS_UNITS["residual"] in axis
    alone = figures.dose_response_comparison(sweeps[:1])
    assert alone.layout.xaxis.title.text == figures.strength_axis_title("centroid")


def test_sweep_headline_reads_the_table_and_summary(runs) -> None:
    headline = figures.COMPARISONS[NAME].headline
    a, b = runs["sweeps"]
    first = headline(a)
    rows = flexac(a).set_index("strength")
    assert first == {
        "model": "organism",
        "layers": ", ".join(str(layer) for layer in a.summary["layers"]),
        "strength unit": "centroid",
        "lowest strength": -2.0,
        "faithfulness at lowest": rows.loc[-2.0, "faithfulness"],
        "faithfulness at 0": rows.loc[0.0, "faithfulness"],
        "highest strength": 2.0,
        "faithfulness at highest": rows.loc[2.0, "faithfulness"],
        "creativity at highest": rows.loc[2.0, "creativity"],
        "collapse (negative side)": None,
        "collapse (positive side)": None,
    }
    second = headline(b)
    rows = flexac(b).set_index("strength")
    assert second["model"] == "organism@step-1" and second["layers"] == "1, 2" and second["strength unit"] == "residual"
    assert (second["lowest strength"], second["highest strength"]) == (-1.0, 3.0)
    assert second["faithfulness at 0"] == rows.loc[0.0, "faithfulness"]
    assert second["faithfulness at highest"] == rows.loc[3.0, "faithfulness"]
    assert second["creativity at highest"] == rows.loc[3.0, "creativity"]
    assert second["collapse (positive side)"] == b.summary["collapse"]["flexac"]["positive"] is not None
    assert list(first) == list(second)  # the same columns for every run


def test_sweep_overlaid_stacks_one_block_per_run(runs) -> None:
    sweeps = runs["sweeps"]
    frame = figures.COMPARISONS[NAME].overlaid(sweeps)
    a, b = (run.tables["sweep"] for run in sweeps)
    assert list(frame.columns) == ["run", *a.columns]
    assert list(frame["run"]) == ["A"] * len(a) + ["B"] * len(b)
    pd.testing.assert_frame_equal(frame.iloc[len(a) :].drop(columns="run").reset_index(drop=True), b)


def test_vector_comparison_overlays_norm_and_separability(runs) -> None:
    vectors = runs["vectors"]
    norm, separability = figures.COMPARISONS[VECTORS_NAME].figures(vectors)
    for figure, column in ((norm, "relative_norm"), (separability, "separability")):
        assert_titled(figure)
        assert [t.name for t in figure.data] == ["A", "B"]
        for line, run in zip(figure.data, vectors, strict=True):
            table = run.tables["per_layer"]
            assert list(line.x) == list(table["layer"]) and list(line.y) == list(table[column])
            steered = [x for x, size in zip(line.x, line.marker.size, strict=True) if size == 12]
            assert steered == run.summary["layers"]
    assert norm.layout.yaxis.title.text == "‖v_l‖ / mean ‖h_l‖ (ratio)"
    assert separability.layout.yaxis.title.text == "Nearest-centroid accuracy (0.5 = chance)"


def test_vector_headline_and_overlaid(runs) -> None:
    comparison = figures.COMPARISONS[VECTORS_NAME]
    a, b = runs["vectors"]
    assert comparison.headline(a) == {
        "model": "organism",
        "layers": ", ".join(str(layer) for layer in a.summary["layers"]),
        "strength unit": "centroid",
        "pairing": "crosswise",
        "pairs kept": len(a.tables["pairs"]),
    }
    second = comparison.headline(b)
    assert second["layers"] == "1, 2" and second["pairing"] == "matched" and second["strength unit"] == "residual"
    assert second["pairs kept"] == b.summary["n_pairs_kept"] == len(b.tables["pairs"])
    frame = comparison.overlaid([a, b])
    n = len(a.tables["per_layer"])
    assert list(frame["run"]) == ["A"] * n + ["B"] * len(b.tables["per_layer"])
    assert list(frame["relative_norm"]) == [
        *a.tables["per_layer"]["relative_norm"],
        *b.tables["per_layer"]["relative_norm"],
    ]
