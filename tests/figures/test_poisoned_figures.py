"""Poisoned-context figures (probes/figures/poisoned.py) drawn from real runs of the probe on the embedded organism."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from probes.figures import LabelledRun
from probes.figures import poisoned as figures
from probes.figures.poisoned import COMPARISONS

ROOT = Path(__file__).resolve().parents[2]
SMALL = {"n_items": 4, "proportion_steps": 4, "max_items_per_category": 3, "n_bootstrap": 20}


@pytest.fixture(scope="module")
def computed():
    """Small real runs: three curves (default; two positions scored by 'sum'; the choice probability fitted) and
    two explored contexts, on the organism and its own testbed (a few seconds)."""
    from probes.models import ModelSpec, load_model
    from probes.poisoned import CurveConfig, ExploreConfig, ExploreInput, explore, run
    from probes.poisoned.testbed import EMBEDDED_TESTBED, load_testbed_file

    model = load_model(ModelSpec(name="organism", device="cpu"))
    testbed = load_testbed_file(EMBEDDED_TESTBED)
    base = CurveConfig(**SMALL)
    configs = {
        "default": base,
        "sum, first and last": replace(base, scoring="sum", positions=("first", "last")),
        "choice probability": replace(base, strength="choice_probability"),
    }
    curves = {label: (cfg, run(model, cfg, testbed)) for label, cfg in configs.items()}
    item = testbed.items[0]
    data = ExploreInput(item.question, tuple(item.appropriate), tuple(item.inappropriate), (item.reference, item.claim))
    contexts = {}
    for count in (1, 2):
        cfg = ExploreConfig(n_inappropriate=count, generate=False)
        contexts[f"{count} bad"] = (cfg, explore(model, cfg, data))
    return curves, contexts


def labelled(label: str, probe: str, cfg, result, **changes) -> LabelledRun:
    fields = {
        "label": label,
        "run_id": f"{label}-0123456789abcdef",
        "probe": probe,
        "model_id": "organism",
        "revision": None,
        "config": asdict(cfg),
        "summary": result.summary(),
        "tables": result.to_tables(),
    }
    return LabelledRun(**{**fields, **changes})


@pytest.fixture(scope="module")
def curve_runs(computed) -> list[LabelledRun]:
    curves, _ = computed
    return [labelled(label, "poisoned", cfg, result) for label, (cfg, result) in curves.items()]


@pytest.fixture(scope="module")
def explore_runs(computed) -> list[LabelledRun]:
    _, contexts = computed
    return [labelled(label, "poisoned-explore", cfg, result) for label, (cfg, result) in contexts.items()]


def titles(figure: go.Figure) -> tuple[str, str, str]:
    layout = figure.layout
    return layout.title.text, layout.xaxis.title.text, layout.yaxis.title.text


def assert_titled(figure: go.Figure) -> None:
    assert isinstance(figure, go.Figure)
    assert all(text and text.strip() for text in titles(figure)), titles(figure)


def traces(figure: go.Figure, kind: str) -> list:
    """The measured lines ("measured"), dashed RW fits ("fit") or bootstrap bands ("band") of a figure."""
    if kind == "measured":
        return [t for t in figure.data if t.mode == "markers+lines"]
    if kind == "fit":
        return [t for t in figure.data if t.mode == "lines" and t.line.dash == "dash"]
    return [t for t in figure.data if t.fill == "toself"]


def main(run: LabelledRun, table: str = "curve") -> pd.DataFrame:
    frame = run.tables[table]
    return frame[(frame["category"] == "all") & (frame["position"] == run.summary["position"])]


def test_the_comparisons_cover_both_probes_of_the_registry() -> None:
    from probes.poisoned import EXPLORE_NAME, NAME
    from probes.wiring import REGISTRY

    assert set(COMPARISONS) == {NAME, EXPLORE_NAME} and set(COMPARISONS) <= set(REGISTRY)


def test_the_figure_module_imports_neither_torch_nor_the_probe() -> None:
    code = (
        "import sys, probes.figures.poisoned; "
        "print(sorted(m for m in ('torch', 'streamlit', 'duckdb', 'cache', 'probes.poisoned') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_compared_curves_overlay_each_runs_rates_bands_and_rw_fit(curve_runs) -> None:
    runs = curve_runs[:2]
    figure = COMPARISONS["poisoned"].figures(runs)[0]
    assert_titled(figure)
    assert titles(figure) == (
        "Poisoned-context curves compared: poisoned rate vs share of inappropriate items",
        "Share of inappropriate items in the context (%)",
        "Poisoned rate (0–1)",
    )
    measured, fits, bands = (traces(figure, kind) for kind in ("measured", "fit", "band"))
    assert len(measured) == len(fits) == len(bands) == len(runs)
    assert [t.name for t in measured] == [run.label for run in runs]
    assert len({t.line.color for t in measured}) == len(runs)
    for run, line, fit in zip(runs, measured, fits, strict=True):
        rows, fine = main(run), main(run, "fitted")
        assert len(rows) == SMALL["proportion_steps"] + 1  # one position: the run's first ("first" for the 2nd)
        np.testing.assert_allclose(line.x, rows["proportion"] * 100)
        np.testing.assert_allclose(line.y, rows["poisoned_rate"])
        best = main(run, "fits")["best_model"].iloc[0]  # the dashed line is the best model by AICc
        expected = (
            np.full(len(fine), main(run, "fits")["const_b"].iloc[0])
            if best == "constant"
            else fine[{"rw": "fitted", "logistic": "logistic", "proportional": "proportional"}[best]]
        )
        np.testing.assert_allclose(fit.y, expected)
        assert fit.name == f"{run.label} {figures.FIT_NAMES[best]}"
        assert fit.line.color == line.line.color
    assert runs[1].summary["position"] == "first"


def test_runs_that_fitted_other_strengths_are_drawn_as_poisoned_rates(curve_runs) -> None:
    default, _, choice = curve_runs
    figure = figures.compare_curves_figure([default, choice])
    assert titles(figure)[2] == "Poisoned rate (0–1)"
    measured = traces(figure, "measured")
    np.testing.assert_allclose(measured[1].y, main(choice)["poisoned_rate"])
    best = main(default, "fits")["best_model"].iloc[0]
    assert [t.name for t in traces(figure, "fit")] == [f"{default.label} {figures.FIT_NAMES[best]}"]  # no other fit
    alone = figures.compare_curves_figure([choice])
    assert titles(alone)[2] == "Mean choice probability of the claim (0–1)"
    np.testing.assert_allclose(traces(alone, "measured")[0].y, main(choice)["choice_probability"])


def test_compared_log_odds_overlay_each_runs_mean_log_odds(curve_runs) -> None:
    figure = COMPARISONS["poisoned"].figures(curve_runs)[1]
    assert_titled(figure)
    assert titles(figure)[2] == "log P(claim) − log P(reference) (nats)"
    assert [t.name for t in figure.data] == [run.label for run in curve_runs]
    for run, line in zip(curve_runs, figure.data, strict=True):
        np.testing.assert_allclose(line.y, main(run)["mean_logodds"])
        np.testing.assert_allclose(line.error_y.array, main(run)["mean_logodds_high"] - main(run)["mean_logodds"])


def test_curve_headline_equals_the_runs_tables_and_summary(curve_runs) -> None:
    for run in curve_runs:
        headline = COMPARISONS["poisoned"].headline(run)
        rows = main(run).set_index("proportion")
        fit = main(run, "fits").iloc[0]
        best = fit["best_model"]
        assert headline["model"] == "organism" and headline["revision"] is None
        assert headline["scoring"] == run.config["scoring"]
        assert headline["steering strength"] == 0.0 and headline["steering vector"] == "none"
        assert headline["poisoned rate at 0%"] == pytest.approx(rows.loc[0.0, "poisoned_rate"])
        assert headline["share near 50%"] == 0.5
        assert headline["poisoned rate near 50%"] == pytest.approx(rows.loc[0.5, "poisoned_rate"])
        assert headline["poisoned rate at 100%"] == pytest.approx(rows.loc[1.0, "poisoned_rate"])
        assert headline["best model (AICc)"] == best == run.summary["rw_fit"]["best_model"]
        assert headline["R² of the best model"] == pytest.approx(fit[f"r2_{best}"], nan_ok=True)
        assert headline["αβ"] == pytest.approx(fit["alpha_beta"])
    steer = {"strength": -2.0, "layers": [1], "positions": "all", "vector_digest": "feedbeefcafe0123"}
    steered = replace(curve_runs[0], summary={**curve_runs[0].summary, "steer": steer})
    headline = figures.curve_headline(steered)
    assert headline["steering strength"] == -2.0 and headline["steering vector"] == "feedbeefcafe"


def test_curve_overlaid_has_one_block_per_run(curve_runs) -> None:
    table = COMPARISONS["poisoned"].overlaid(curve_runs)
    assert list(table.columns[:3]) == ["run", "model_id", "revision"]
    assert list(dict.fromkeys(table["run"])) == [run.label for run in curve_runs]
    assert len(table) == sum(len(run.tables["curve"]) for run in curve_runs)
    start = 0
    for run in curve_runs:
        block = table.iloc[start : start + len(run.tables["curve"])]
        assert set(block["run"]) == {run.label} and set(block["model_id"]) == {"organism"}
        pd.testing.assert_frame_equal(
            block.drop(columns=["run", "model_id", "revision"]).reset_index(drop=True),
            run.tables["curve"].reset_index(drop=True),
        )
        start += len(block)


def test_explore_comparison_overlays_attributions_per_segment(explore_runs) -> None:
    comparison = COMPARISONS["poisoned-explore"]
    (figure,) = comparison.figures(explore_runs)
    assert_titled(figure)
    assert figure.layout.barmode == "group"
    assert [t.name for t in figure.data] == [run.label for run in explore_runs]
    for run, bars in zip(explore_runs, figure.data, strict=True):
        segments = run.tables["segments"]
        np.testing.assert_allclose(bars.y, segments["attribution"])
        np.testing.assert_array_equal(bars.x, segments["segment"])
        assert list(bars.marker.pattern.shape) == ["/" if bad else "" for bad in segments["inappropriate"]]
    assert len(explore_runs[1].tables["segments"]) == len(explore_runs[0].tables["segments"]) + 1
    for run in explore_runs:
        headline = comparison.headline(run)
        assert headline["answer log-odds (nats)"] == pytest.approx(run.summary["logodds"])
        assert headline["scoring"] == "calibrated" and headline["forced choice"] == run.summary["winner"]
    table = comparison.overlaid(explore_runs)
    assert list(dict.fromkeys(table["run"])) == [run.label for run in explore_runs]
    assert [len(block) for _, block in table.groupby("run", sort=False)] == [
        len(run.tables["segments"]) for run in explore_runs
    ]
    np.testing.assert_allclose(
        table["attribution"], pd.concat([r.tables["segments"] for r in explore_runs])["attribution"]
    )


def test_the_page_figures_draw_their_groups(curve_runs, explore_runs) -> None:
    run = curve_runs[1]  # two positions
    curve, fitted = run.tables["curve"], run.tables["fitted"]
    groups = [("all", "first"), ("all", "last")]
    best = {("all", "first"): "rw"}
    figure = figures.curve_figure(curve, fitted, groups, "poisoned_rate", True, best)
    assert_titled(figure)
    assert titles(figure)[0] == "Poisoned-context curve: poisoned rate vs share of inappropriate items"
    measured = traces(figure, "measured")
    assert [t.name for t in measured] == ["all · first", "all · last"]
    for (category, position), line in zip(groups, measured, strict=True):
        rows = curve[(curve["category"] == category) & (curve["position"] == position)]
        np.testing.assert_allclose(line.y, rows["strength"])
    assert any(t.name == "all · first RW fit ★ best (AICc)" for t in figure.data)
    assert sum(t.name.endswith("sequential RW") for t in figure.data) == 2
    logodds = figures.logodds_figure(curve, groups)
    assert_titled(logodds)
    assert titles(logodds)[0] == "Mean log-odds of the claim over the reference answer"
    np.testing.assert_allclose(logodds.data[1].y, curve[curve["position"] == "last"]["mean_logodds"])
    overweight = figures.overweight_figure(fitted, groups)
    assert_titled(overweight)
    np.testing.assert_allclose(overweight.data[0].y, fitted[fitted["position"] == "first"]["overweight"])
    segments = explore_runs[0].tables["segments"]
    attribution = figures.attribution_figure(segments)
    assert_titled(attribution)
    assert titles(attribution)[0] == "Leave-one-out attribution per context segment (red: inappropriate)"
    np.testing.assert_allclose(attribution.data[0].y, segments["attribution"])


def test_steered_figure_is_an_overlay_with_one_curve_per_strength(curve_runs) -> None:
    values = (-2.0, 0.0, 2.0)
    runs = [
        (value, run.tables["curve"], run.summary["position"]) for value, run in zip(values, curve_runs, strict=True)
    ]
    figure = figures.steered_figure(runs, "poisoned_rate")
    assert titles(figure) == (
        "Poisoned-context curves under steering: poisoned rate vs share of inappropriate items",
        "Share of inappropriate items in the context (%)",
        "Poisoned rate (0–1)",
    )
    assert figure.layout.legend.title.text == "Steering strength (vector units)"
    measured = traces(figure, "measured")
    assert [t.name for t in measured] == ["strength -2", "strength 0 (unsteered)", "strength +2"]
    assert len(traces(figure, "band")) == 3 and not traces(figure, "fit")
    for run, line in zip(curve_runs, measured, strict=True):
        np.testing.assert_allclose(line.y, main(run)["strength"])


def test_overlay_curves_draws_the_fit_only_when_given(curve_runs) -> None:
    first, second = curve_runs[:2]
    curves = [("before", main(first), main(first, "fitted")), ("after", main(second), None)]
    figure = figures.overlay_curves_figure(curves, "Before and after")
    assert_titled(figure)
    assert figure.layout.title.text == "Before and after"
    assert [t.name for t in traces(figure, "measured")] == ["before", "after"]
    assert [t.name for t in traces(figure, "fit")] == ["before RW fit"]
    band = traces(figure, "band")[1]
    rows = main(second)
    np.testing.assert_allclose(band.y, list(rows["strength_high"]) + list(rows["strength_low"][::-1]))


def test_mitigation_figure_overlays_before_and_after_with_each_best_model(curve_runs) -> None:
    before, after = curve_runs[0], curve_runs[2]
    sides = [(run.tables["curve"], run.tables["fitted"], run.tables["fits"]) for run in (before, after)]
    figure = figures.mitigation_figure(*sides)
    assert_titled(figure)
    assert titles(figure)[0] == figures.MITIGATION_TITLE
    measured, fits = traces(figure, "measured"), traces(figure, "fit")
    assert [t.name for t in measured] == ["before (base model)", "after RW-Steering (judges first)"]
    np.testing.assert_allclose(measured[1].y, main(after)["strength"])
    assert fits[0].name.endswith(figures.FIT_NAMES[main(before, "fits")["best_model"].iloc[0]])


def test_a_constant_best_fit_is_drawn_flat_at_its_level(curve_runs) -> None:
    run = curve_runs[0]
    fits = run.tables["fits"].assign(best_model="constant", const_b=0.25)
    rows, name = figures.best_fit_rows(run.tables["fitted"], fits)
    assert name == "constant fit" and (rows["fitted"] == 0.25).all() and len(rows) == len(main(run, "fitted"))


def test_tuning_loss_figure_draws_one_line_per_stage() -> None:
    history = pd.DataFrame({"stage": [1, 1, 2], "step": [0, 1, 2], "loss": [3.0, 2.0, 1.0], "learning_rate": 1e-3})
    figure = figures.tuning_loss_figure(history)
    assert_titled(figure)
    assert [t.name for t in figure.data] == ["stage 1", "stage 2"]
    assert list(figure.data[1].y) == [1.0]
