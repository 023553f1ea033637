"""Figures: pure functions from stored tables to Plotly figures, one module per probe page.

The probe pages, the compare view (`pages/compare.py`) and the tests all draw through these modules, so a figure
looks the same wherever it appears. Nothing here imports Streamlit, DuckDB, torch or `cache/`
(tests/test_import_rules.py): a function takes DataFrames (a stored run's tables) and plain values, and returns a
`plotly.graph_objects.Figure` with a title, axis titles and units.

Comparing runs: each probe module exposes `COMPARISONS`, a dict from probe name (the `probes.wiring.REGISTRY` name,
e.g. "poisoned") to a `Comparison`: how to overlay several stored runs of that probe, what their headline numbers
are, and the overlaid data as one tidy table for export. `probes.figures.compare.comparison_for(probe)` collects them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
import plotly.graph_objects as go


@dataclass(frozen=True)
class LabelledRun:
    """One stored run as the compare view hands it to a figure module (a `cache.StoredRun`'s plain parts)."""

    label: str  # how the run is named in legends and tables, unique among the compared runs
    run_id: str
    probe: str
    model_id: str
    revision: str | None
    config: dict  # the run's config as stored
    summary: dict
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


@dataclass(frozen=True)
class Comparison:
    """How one probe's runs are compared."""

    figures: Callable[[list[LabelledRun]], list[go.Figure]]  # the main figures, the runs overlaid (or side by side)
    headline: Callable[[LabelledRun], dict[str, object]]  # headline numbers of one run: column name -> value
    overlaid: Callable[[list[LabelledRun]], pd.DataFrame]  # the data the figures draw, with a "run" column (label)
