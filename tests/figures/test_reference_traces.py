"""Published reference traces on the probe figures: drawn from probes/data/references.json with the source on hover,
in legend group "published", and absent when the page passes references=None."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from probes.figures import induction, poisoned, spectra, steering
from probes.references import PUBLISHED_GROUP, load_references

REFS = load_references()
SHARES = np.linspace(0, 1, 5)


def published(figure: go.Figure) -> list:
    return [trace for trace in figure.data if trace.legendgroup == PUBLISHED_GROUP]


def notes(figure: go.Figure) -> list:
    return [a for a in figure.layout.annotations if (a.name or "").startswith(PUBLISHED_GROUP + ":")]


def hovers(trace) -> str:
    text = trace.hovertext
    return (" ".join(text) if isinstance(text, list | tuple) else str(text)).replace("<br>", " ")


# ------------------------------------------------------------------------------------------------ spectra


def test_balance_figure_marks_the_published_balance_per_optimizer() -> None:
    table = pd.DataFrame({"optimizer": ["gd", "signgd", "adam", "muon"], "balance": [0.02, 0.01, np.nan, 0.9]})
    figure = spectra.balance_figure(table, REFS)
    (stars,) = published(figure)
    assert list(stars.x) == ["GD", "SignGD", "Muon"] and list(stars.y) == [0.018, 0.016, 0.904]
    assert stars.marker.symbol == "star" and stars.name.startswith("published · Muon vs Adam")
    assert "Muon Outperforms Adam in Tail-End Associative Memory Learning" in hovers(stars)
    assert "K = d = 64" in hovers(stars) and "ICLR, 2026" in hovers(stars)
    bars = figure.data[0]
    assert list(bars.x) == ["GD", "SignGD", "Adam", "Muon"] and list(bars.text) == ["", "", "never", ""]
    assert figure.layout.xaxis.title.text and figure.layout.yaxis.title.text
    assert not published(spectra.balance_figure(table, None))


def test_accuracy_figure_marks_the_published_tail_accuracy_at_the_last_step() -> None:
    rows = [
        {"setup": setup, "group": group, "step": step, "accuracy": 0.5}
        for setup in ("adam", "muon", "muon_vo_ffn")
        for group in ("head", "tail", "all")
        for step in (0, 50, 100)
    ]
    accuracy = pd.DataFrame(rows)
    figure = spectra.accuracy_figure(accuracy, REFS)
    (stars,) = published(figure)
    assert list(stars.x) == pytest.approx([102.5, 105, 107.5]) and list(stars.y) == [0.264, 0.976, 0.954]
    text = hovers(stars)
    assert "160M-parameter model, 10k steps" in text and "Adam 3.924" in text and "Muon 3.565" in text
    assert "Muon Outperforms Adam" in text and "just right of this run's last step" in text
    assert not published(spectra.accuracy_figure(accuracy))
    caption = spectra.transformer_scale(REFS["muon-tail-accuracy"])
    assert "Muon 0.976, Adam 0.264" in caption and "0.976" not in spectra.transformer_scale(None)


# ----------------------------------------------------------------------------------------------- poisoned


def curve_tables() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    base = {"category": "all", "position": "random", "proportion": SHARES}
    half = SHARES / 2
    curve = pd.DataFrame({**base, "strength": half, "strength_low": SHARES / 3, "strength_high": SHARES / 1.5,
                          "mean_logodds": SHARES - 1, "rw_sequential": half, "poisoned_rate": half})  # fmt: skip
    fitted = pd.DataFrame({**base, "fitted": SHARES / 2, "logistic": SHARES / 2, "proportional": SHARES / 2})
    fits = pd.DataFrame({"category": ["all"], "position": ["random"], "best_model": ["rw"]})
    return curve, fitted, fits


def test_curve_figure_draws_the_qwen2_read_off_points_as_shares() -> None:
    curve, fitted, _ = curve_tables()
    groups = [("all", "random")]
    figure = poisoned.curve_figure(curve, fitted, groups, "poisoned_rate", False, None, REFS)
    (points,) = published(figure)
    assert list(points.x) == [10, 20, 50, 100] and list(points.y) == pytest.approx([0.20, 0.27, 0.43, 0.52])
    assert all(-0.02 <= y <= 1.02 for y in points.y)  # inside the figure's y range
    text = hovers(points)
    assert "read off the paper's figure" in text and "LLM-judge score, not this page's forced choice" in text
    assert "Rescorla Wagner Steering" in text and "~20% at 10% share" in text
    assert not published(poisoned.curve_figure(curve, fitted, groups, "poisoned_rate", False))


def test_mitigation_figure_draws_the_published_quality_on_a_right_axis() -> None:
    side = curve_tables()
    figure = poisoned.mitigation_figure(side, side, REFS)
    baseline, band = published(figure)
    assert list(baseline.x) == [0, 5, 50, 95] and list(baseline.y) == [74.1, 61.9, 55.2, 47.8]
    assert baseline.yaxis == band.yaxis == "y2" and band.fill == "toself"
    assert set(band.y) == {74, 78} and (min(band.x), max(band.x)) == (0, 95)
    assert figure.layout.yaxis2.overlaying == "y" and figure.layout.yaxis2.range == (-2, 102)
    text = hovers(baseline) + hovers(band)
    assert "quality 0–100 from the paper" in text and "not comparable in scale" in text
    assert "consistency before 62.7" in text and "cleanliness after 82" in text and "EMNLP, 2025" in text
    assert not published(poisoned.mitigation_figure(side, side)) and figure.layout.yaxis.range == (-0.02, 1.02)


# ----------------------------------------------------------------------------------------------- steering


def test_sweep_figure_notes_flexacs_published_changes() -> None:
    rows = pd.DataFrame(
        [{"direction": d, "strength": s, "faithfulness": 0.5, "answer_prob": 0.4, "creativity": 0.3, "distinct_2": 0.6}
         for d in ("flexac", "random") for s in (-2.0, 0.0, 2.0)]
    )  # fmt: skip
    figure = steering.sweep_figure(rows, {}, "novelty", "centroid", REFS)
    (note,) = notes(figure)
    assert "creativity up to 5.8× (Creation-MMBench)" in note.text and "29% fewer hallucinations (CHAIR)" in note.text
    assert "FlexAC: Towards Flexible Control of Associative Reasoning" in hovers(note)
    assert note.xref == note.yref == "paper"  # a note, not a point on the sweep's axes
    assert not notes(steering.sweep_figure(rows, {}, "novelty", "centroid"))


# ---------------------------------------------------------------------------------------------- induction


def test_emergence_figure_explains_the_phase_change_without_placing_it() -> None:
    steps = np.arange(0, 500, 50)
    history = pd.DataFrame({"step": steps, "loss": 4 - steps / 200, "first_half_loss": 4.0, "induction_score": 0.5,
                            "layer_induction_total": 1.0, "best_layer": 1, "previous_token_score": 0.3,
                            "loss_ratio": 0.5})  # fmt: skip
    figure = induction.emergence_figure(history, "repeat", 200, 500, 4, 0.6, REFS)
    (note,) = notes(figure)
    assert note.text.startswith("Olsson et al. 2022: phase change") and note.xref == "paper"
    assert "In-context Learning and Induction Heads" in hovers(note)
    assert "token 500 minus loss at token 50" in hovers(note)
    bare = induction.emergence_figure(history, "repeat", 200, 500, 4, 0.6)
    assert not notes(bare) and not published(bare)
    assert figure.layout.shapes == bare.layout.shapes  # no line or band at a made-up step: this run's marks only
