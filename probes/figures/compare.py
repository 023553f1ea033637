"""The compare view's pure part (pages/compare.py draws it): which probes can be compared, readable unique labels
for the compared runs, their headline numbers side by side, and the run ids a shareable URL carries.

Each probe's figure module exposes `COMPARISONS` (probe name -> `Comparison`); this module collects them. Nothing
here imports Streamlit, DuckDB, torch or `cache/`: runs arrive as plain objects or mappings (a `cache.StoredRun`, a
`LabelledRun`, a row of `ResultStore.list_runs()`).
"""

from __future__ import annotations

import importlib
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

import pandas as pd

from probes.figures import Comparison, LabelledRun

FIGURE_MODULES = ("induction", "steering", "spectra", "poisoned")  # probes.figures.<name>, each with COMPARISONS
MAX_LABEL = 40  # characters of a run's label (legends, table columns)
ID_CHARS = 8  # run-id characters appended to labels that would otherwise collide
MIN_PREFIX = 8  # shortest run-id prefix a URL may carry
SHARE_PREFIX = 12  # run-id characters written into a shareable URL (more when that is ambiguous)
MISSING = "—"  # a headline field a run does not have
DETAIL_VALUE_CHARS = 14  # characters of one config value in a distinguishing detail


def comparisons() -> dict[str, Comparison]:
    """Every probe's `Comparison`, from the figure modules that exist and define `COMPARISONS`."""
    found: dict[str, Comparison] = {}
    for name in FIGURE_MODULES:
        try:
            module = importlib.import_module(f"probes.figures.{name}")
        except ImportError:  # a figure module not written yet
            continue
        found.update(getattr(module, "COMPARISONS", {}))
    return found


def comparison_for(probe: str) -> Comparison | None:
    """How runs of `probe` (a `probes.wiring.REGISTRY` name) are compared; None when they cannot be."""
    return comparisons().get(probe)


def comparable_probes() -> list[str]:
    return sorted(comparisons())


# --- which runs ------------------------------------------------------------------------------------------


def check_same_probe(probes: Sequence[str]) -> None:
    """Raise ValueError unless there are at least two runs, all of one probe (`probes`: each run's probe)."""
    if len(probes) < 2:
        raise ValueError(f"Pick at least two runs to compare ({len(probes)} given).")
    counts = Counter(probes)
    if len(counts) > 1:
        listed = ", ".join(f"{probe} ({count} run{'s' if count > 1 else ''})" for probe, count in counts.items())
        raise ValueError(f"Runs of different probes cannot be compared: {listed}; pick runs of one probe.")


def parse_run_ids(value: str | Sequence[str] | None) -> list[str]:
    """The run ids of a `runs` query parameter ('id1,id2', or repeated parameters), in order, without repeats."""
    if value is None:
        return []
    parts = [value] if isinstance(value, str) else list(value)
    tokens = [token.strip() for part in parts for token in str(part).split(",")]
    return list(dict.fromkeys(token for token in tokens if token))


def resolve_run_ids(tokens: Sequence[str], known: Iterable[str]) -> list[str]:
    """The full stored run ids that `tokens` (full ids or unique prefixes of >= 8 characters) name, in order.

    Raises ValueError naming every token that is too short, unknown or ambiguous."""
    known = list(dict.fromkeys(known))
    resolved, short, unknown, ambiguous = [], [], [], []
    for token in tokens:
        if token in known:
            resolved.append(token)
            continue
        if len(token) < MIN_PREFIX:
            short.append(token)
            continue
        matches = [run_id for run_id in known if run_id.startswith(token)]
        if not matches:
            unknown.append(token)
        elif len(matches) > 1:
            ambiguous.append(token)
        else:
            resolved.append(matches[0])
    problems = []
    if unknown:
        problems.append(f"no stored run has the id {_quoted(unknown)}")
    if short:
        problems.append(f"{_quoted(short)} {'is' if len(short) == 1 else 'are'} shorter than {MIN_PREFIX} characters")
    if ambiguous:
        problems.append(f"{_quoted(ambiguous)} {'matches' if len(ambiguous) == 1 else 'match'} several runs")
    if problems:
        raise ValueError(f"Cannot compare these runs: {'; '.join(problems)}. Pick runs from the run history.")
    return list(dict.fromkeys(resolved))


def _quoted(tokens: Sequence[str]) -> str:
    return ", ".join(f"'{token[:40]}'" for token in tokens)


def share_ids(run_ids: Sequence[str], known: Iterable[str]) -> list[str]:
    """Short forms of `run_ids` for a URL: the first 12 characters, or more where another stored id shares them."""
    known = list(known)
    shortened = []
    for run_id in run_ids:
        length = SHARE_PREFIX
        while length < len(run_id) and any(o != run_id and o.startswith(run_id[:length]) for o in known):
            length += 4
        shortened.append(run_id[:length])
    return shortened


# --- labels ----------------------------------------------------------------------------------------------


def _field(row: object, name: str, default: object = None) -> object:
    if isinstance(row, Mapping):
        return row.get(name, default)
    return getattr(row, name, default)


def _config(row: object) -> dict:
    config = _field(row, "config")
    if config is None and isinstance(raw := _field(row, "config_json"), str):
        try:
            config = json.loads(raw)
        except ValueError:
            config = None
    return config if isinstance(config, dict) else {}


def _revision(row: object) -> str | None:
    revision = _field(row, "revision")
    return revision if isinstance(revision, str) and revision else None  # None, NaN (a table row) or ""


def _summary(row: object) -> dict:
    summary = _field(row, "summary")
    return summary if isinstance(summary, dict) else {}


def _short_value(value: object) -> str:
    if isinstance(value, float):
        text = f"{value:g}"
    elif isinstance(value, (dict, list, tuple)):
        text = json.dumps(value, separators=(",", ":"), default=str)
    else:
        text = str(value)
    return text if len(text) <= DETAIL_VALUE_CHARS else text[: DETAIL_VALUE_CHARS - 1] + "…"


def _strength(row: object) -> str | None:
    """The steering strength of a steered run (summary["steer"]["strength"], or a numeric config "strength")."""
    steer = _summary(row).get("steer")
    value = steer.get("strength") if isinstance(steer, dict) else _config(row).get("strength")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return f"strength {float(value):+g}"


def _judge_first(row: object) -> str | None:
    return "judge first" if _config(row).get("judge_first") else None


def _detail_candidates(rows: Sequence[object]) -> list[Callable[[object], str | None]]:
    """Ways to tell runs apart, the named ones first, then every config key in the order the runs store them."""
    candidates: list[Callable[[object], str | None]] = [_strength, _judge_first]
    keys = dict.fromkeys(key for row in rows for key in _config(row))
    for key in keys:
        if key == "judge_first":
            continue
        candidates.append(
            lambda row, key=key: None if key not in _config(row) else f"{key}={_short_value(_config(row)[key])}"
        )
    return candidates


def _model_names(rows: Sequence[object]) -> dict[str, str]:
    """Model id -> its last path component ('EleutherAI/pythia-70m' -> 'pythia-70m') where that stays unique."""
    ids = list(dict.fromkeys(str(_field(row, "model_id") or "?") for row in rows))
    short = {model: model.rstrip("/").rsplit("/", 1)[-1] or model for model in ids}
    counts = Counter(short.values())
    return {model: name if counts[name] == 1 else model for model, name in short.items()}


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_labels(rows: Sequence[object]) -> list[str]:
    """Short (<= 40 characters), unique, readable labels: 'model@revision', plus what tells runs with the same model
    and revision apart (steering strength, 'judge first', a differing config value), else the 8-character run id."""
    names = _model_names(rows)
    bases = []
    for row in rows:
        revision = _revision(row)
        model = names[str(_field(row, "model_id") or "?")]
        bases.append(f"{model}@{revision}" if revision else model)
    labels = list(bases)
    groups: dict[str, list[int]] = {}
    for index, base in enumerate(bases):
        groups.setdefault(base, []).append(index)
    for base, members in groups.items():
        if len(members) < 2:
            continue
        group = [rows[index] for index in members]
        details: list[list[str]] = [[] for _ in members]
        for candidate in _detail_candidates(group):
            values = [candidate(row) for row in group]
            if len(set(values)) < 2:
                continue  # the same for all of them: says nothing
            for position, value in enumerate(values):
                if value:
                    details[position].append(value)
            if max(map(len, details)) >= 2 or len({tuple(found) for found in details}) == len(members):
                break
        for position, index in enumerate(members):
            if details[position]:
                labels[index] = f"{base} · {', '.join(details[position])}"
    labels = [_fit(label, MAX_LABEL) for label in labels]
    counts = Counter(labels)
    for index, label in enumerate(labels):
        if counts[label] > 1:  # still ambiguous: the run id decides
            suffix = f" · {str(_field(rows[index], 'run_id') or '')[:ID_CHARS]}"
            labels[index] = _fit(bases[index], MAX_LABEL - len(suffix)) + suffix
    return labels


def labelled_runs(runs: Sequence[object]) -> list[LabelledRun]:
    """Stored runs (anything with a `cache.StoredRun`'s fields) as the figure modules take them, labelled."""
    return [
        LabelledRun(label=label, run_id=str(_field(run, "run_id")), probe=str(_field(run, "probe")),
                    model_id=str(_field(run, "model_id")), revision=_revision(run), config=_config(run),
                    summary=_summary(run), tables=dict(_field(run, "tables") or {}))
        for run, label in zip(runs, run_labels(runs), strict=True)
    ]  # fmt: skip


# --- the table and the export ----------------------------------------------------------------------------


def format_value(value: object) -> str:
    """A headline value as the side-by-side table shows it: 4 significant digits, '—' when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.4g}"
    return str(value)


def headline_table(runs: Sequence[LabelledRun], comparison: Comparison) -> pd.DataFrame:
    """The runs' headline numbers side by side: one column per run (its label), one row per headline field (the
    index), the run id first; values formatted for reading, '—' where a run lacks a field."""
    headlines = [{"run id": run.run_id[:SHARE_PREFIX], **comparison.headline(run)} for run in runs]
    fields = list(dict.fromkeys(name for headline in headlines for name in headline))
    columns = {run.label: [format_value(headline.get(name)) for name in fields] for run, headline in
               zip(runs, headlines, strict=True)}  # fmt: skip
    return pd.DataFrame(columns, index=pd.Index(fields, name="field"))


def export_frame(overlaid: pd.DataFrame, runs: Sequence[LabelledRun]) -> pd.DataFrame:
    """The overlaid data with each row's full run id next to its run label (labels are for reading, ids trace)."""
    frame = overlaid.copy()
    if "run" in frame.columns and "run_id" not in frame.columns:
        ids = {run.label: run.run_id for run in runs}
        frame.insert(int(frame.columns.get_loc("run")) + 1, "run_id", frame["run"].map(ids))
    return frame
