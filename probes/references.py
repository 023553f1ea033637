"""Published reference values and the papers' headline settings (probes/data/references.json).

A `Reference` is one published result as METHODS.md states it: named numbers (`values`), named (x, y) series
(`points`) and named (low, high) ranges (`bands`), with its units, setting and citation. The figure modules draw
them as a separate "published" trace when a page passes them in (`load_references()`, a dict id -> Reference);
nothing in page or figure code repeats a published number.

A `Preset` is a paper's headline experiment as the values of a page's widget keys (`Preset.state(n_layers)`), plus
notes on what the user has to load themselves (a hub model, the testbed pools). Presets never name the sidebar's
model keys: loading a model is always the user's action.

Pure: json and dataclasses only (no torch, no Streamlit). A malformed file raises one ValueError naming the entry.
"""

from __future__ import annotations

import functools
import json
import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

REFERENCES_PATH = Path(__file__).resolve().parent / "data" / "references.json"
NO_PRESET = "—"  # the first option of every page's "Paper settings" select box
PAGES = ("induction", "steering", "poisoned", "spectra")
SIDEBAR_KEYS = frozenset({"model_source", "model_name", "model_revision", "model_catalog", "model_catalog_revision"})
REFERENCE_KEYS = {"id", "cite", "what", "setting", "units", "values", "points", "bands", "read_off_figure", "note"}
PRESET_KEYS = {"id", "label", "cite", "widgets", "layers", "notes"}
CITATION_KEYS = {"authors", "title", "venue", "year", "short"}
PUBLISHED_GROUP = "published"  # the legend group of every drawn reference


class ReferencesError(ValueError):
    """The references file is missing or malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class Citation:
    title: str
    venue: str
    year: int
    short: str  # how a legend names the paper, e.g. "Olsson et al. 2022"
    authors: str | None = None

    def text(self) -> str:
        """'Olsson et al., "In-context Learning and Induction Heads" (Transformer Circuits Thread, 2022)'."""
        who = f"{self.authors}, " if self.authors else ""
        return f'{who}"{self.title}" ({self.venue}, {self.year})'


@dataclass(frozen=True)
class Reference:
    id: str
    what: str  # what the numbers are
    units: str
    citation: Citation
    values: dict[str, float] = field(default_factory=dict)  # named numbers
    points: dict[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)  # named (x, y) series
    bands: dict[str, tuple[float, float]] = field(default_factory=dict)  # named (low, high) ranges
    setting: str = ""  # the published experiment's setting
    read_off_figure: bool = False  # the numbers were read off the paper's figure (approximate)
    note: str = ""

    def source(self) -> str:
        """The citation, and "read off the paper's figure" where that is how the numbers were taken."""
        return "Published: " + self.citation.text() + ("; read off the paper's figure" if self.read_off_figure else "")


@dataclass(frozen=True)
class LayerRule:
    """Steering layers as a share of depth: `count` consecutive layers centred in `depth` (low, high)."""

    key: str  # the widget key the layers go into
    depth: tuple[float, float]
    count: int

    def layers(self, n_layers: int) -> list[int]:
        """`count` consecutive layers whose depth (l + 1) / n_layers is centred in the depth range (the depth of
        blocks.{l}.hook_resid_post, as probes.steering.vectors.default_layers counts it)."""
        count = max(1, min(self.count, n_layers))
        centre = sum(self.depth) / 2 * n_layers - 1  # the layer l whose depth is the middle of the range
        start = min(max(0, int(centre + 0.5) - count // 2), n_layers - count)  # half rounds up
        return list(range(start, start + count))


@dataclass(frozen=True)
class Preset:
    id: str
    label: str
    citation: Citation
    widgets: dict[str, object]  # widget key -> value
    notes: tuple[str, ...] = ()  # what the user loads themselves, and how
    layers: LayerRule | None = None

    def state(self, n_layers: int | None = None) -> dict[str, object]:
        """The session-state values this preset sets (the steering layers only when the model's depth is known)."""
        state = {key: list(value) if isinstance(value, list) else value for key, value in self.widgets.items()}
        if self.layers is not None and n_layers:
            state[self.layers.key] = self.layers.layers(n_layers)
        return state


def legend_name(reference: Reference, what: str = "") -> str:
    """The legend entry of a drawn reference: "published · Olsson et al. 2022" (and what it shows, if given)."""
    return f"published · {reference.citation.short}" + (f": {what}" if what else "")


def hover_text(reference: Reference, *lines: str, width: int = 72) -> str:
    """Hover text of a drawn reference: the given lines, what it is, its setting, and its source, wrapped."""
    parts = [*lines, reference.what, reference.setting, reference.source()]
    return "<br>".join("<br>".join(textwrap.wrap(part, width)) for part in parts if part)


# ---------------------------------------------------------------------------------------------- validation


def _fail(path: Path, where: str, problem: str) -> None:
    raise ReferencesError(f"References file {path} is malformed: {where} {problem}.")


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _pair(value: object) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(map(_number, value))


def _text(path: Path, where: str, raw: dict, key: str, required: bool = True) -> str:
    value = raw.get(key, None if required else "")
    if not isinstance(value, str) or (required and not value.strip()):
        _fail(path, f"{where}.{key}", "must be a non-empty string" if required else "must be a string")
    return value


def _citation(path: Path, where: str, raw: object) -> Citation:
    if not isinstance(raw, dict):
        _fail(path, where, "must be an object")
    if unknown := set(raw) - CITATION_KEYS:
        _fail(path, where, f"has unknown keys {sorted(unknown)}")
    year = raw.get("year")
    if not isinstance(year, int) or isinstance(year, bool) or not 1900 < year < 2100:
        _fail(path, f"{where}.year", "must be a year")
    authors = raw.get("authors")
    if authors is not None and (not isinstance(authors, str) or not authors.strip()):
        _fail(path, f"{where}.authors", "must be a non-empty string or null")
    title, venue, short = (_text(path, where, raw, key) for key in ("title", "venue", "short"))
    return Citation(title, venue, year, short, authors)


def _cited(path: Path, where: str, raw: dict, citations: dict[str, Citation]) -> Citation:
    cite = raw.get("cite")
    if cite not in citations:
        _fail(path, f"{where}.cite", f"names no entry of 'citations' ({cite!r})")
    return citations[cite]


def _values(path: Path, where: str, raw: object) -> dict[str, float]:
    if not isinstance(raw, dict) or not all(isinstance(k, str) and _number(v) for k, v in raw.items()):
        _fail(path, where, "must map names to finite numbers")
    return {key: float(value) for key, value in raw.items()}


def _points(path: Path, where: str, raw: object) -> dict[str, tuple[tuple[float, float], ...]]:
    if not isinstance(raw, dict):
        _fail(path, where, "must map series names to lists of [x, y] pairs")
    series = {}
    for name, pairs in raw.items():
        if not isinstance(pairs, list) or not pairs or not all(map(_pair, pairs)):
            _fail(path, f"{where}[{name!r}]", "must be a non-empty list of [x, y] number pairs")
        series[name] = tuple((float(x), float(y)) for x, y in pairs)
    return series


def _bands(path: Path, where: str, raw: object) -> dict[str, tuple[float, float]]:
    if not isinstance(raw, dict):
        _fail(path, where, "must map names to [low, high] pairs")
    bands = {}
    for name, pair in raw.items():
        if not (_pair(pair) and pair[0] <= pair[1]):
            _fail(path, f"{where}[{name!r}]", "must be a [low, high] pair of numbers with low <= high")
        bands[name] = (float(pair[0]), float(pair[1]))
    return bands


def _checked_entry(path: Path, where: str, raw: object, allowed: set[str]) -> str:
    """An entry must be an object of known keys; returns where it is, named by its id when it has one."""
    if not isinstance(raw, dict):
        _fail(path, where, "must be an object")
    if isinstance(raw.get("id"), str):
        where += f" ({raw['id']})"
    if unknown := set(raw) - allowed:
        _fail(path, where, f"has unknown keys {sorted(unknown)}")
    return where


def _reference(path: Path, index: int, raw: object, citations: dict[str, Citation]) -> Reference:
    where = _checked_entry(path, f"references[{index}]", raw, REFERENCE_KEYS)
    values = _values(path, f"{where}.values", raw.get("values", {}))
    points = _points(path, f"{where}.points", raw.get("points", {}))
    bands = _bands(path, f"{where}.bands", raw.get("bands", {}))
    if not (values or points or bands):
        _fail(path, where, "has no numbers (values, points or bands)")
    read_off = raw.get("read_off_figure", False)
    if not isinstance(read_off, bool):
        _fail(path, f"{where}.read_off_figure", "must be true or false")
    return Reference(
        id=_text(path, where, raw, "id"), what=_text(path, where, raw, "what"), units=_text(path, where, raw, "units"),
        citation=_cited(path, where, raw, citations), values=values, points=points, bands=bands,
        setting=_text(path, where, raw, "setting", required=False), read_off_figure=read_off,
        note=_text(path, where, raw, "note", required=False),
    )  # fmt: skip


def _layer_rule(path: Path, where: str, raw: object) -> LayerRule:
    if not isinstance(raw, dict) or set(raw) != {"key", "depth", "count"}:
        _fail(path, where, "must be an object with key, depth and count")
    depth, count = raw["depth"], raw["count"]
    if not (_pair(depth) and 0 < depth[0] <= depth[1] <= 1):
        _fail(path, f"{where}.depth", "must be [low, high] shares of depth in (0, 1]")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        _fail(path, f"{where}.count", "must be a positive integer")
    return LayerRule(_text(path, where, raw, "key"), (float(depth[0]), float(depth[1])), count)


def _preset(path: Path, page: str, index: int, raw: object, citations: dict[str, Citation]) -> Preset:
    where = _checked_entry(path, f"presets[{page!r}][{index}]", raw, PRESET_KEYS)
    widgets = raw.get("widgets")
    if not isinstance(widgets, dict) or not widgets:
        _fail(path, f"{where}.widgets", "must map widget keys to values")
    if taken := SIDEBAR_KEYS & set(widgets):
        _fail(path, f"{where}.widgets", f"must not set the sidebar's model ({sorted(taken)}); say so in a note")
    notes = raw.get("notes", [])
    if not isinstance(notes, list) or not all(isinstance(n, str) and n.strip() for n in notes):
        _fail(path, f"{where}.notes", "must be a list of non-empty strings")
    layers = _layer_rule(path, f"{where}.layers", raw["layers"]) if "layers" in raw else None
    return Preset(
        id=_text(path, where, raw, "id"), label=_text(path, where, raw, "label"),
        citation=_cited(path, where, raw, citations), widgets=dict(widgets), notes=tuple(notes), layers=layers,
    )  # fmt: skip


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ReferencesError(f"References file {path} cannot be read: {error.strerror or error}.") from None
    except ValueError as error:
        raise ReferencesError(f"References file {path} is not valid JSON: {error}.") from None
    if not isinstance(data, dict) or not isinstance(data.get("references"), list):
        _fail(path, "the top level", "must be an object with a 'references' list")
    return data


def _citations(path: Path, data: dict) -> dict[str, Citation]:
    raw = data.get("citations", {})
    if not isinstance(raw, dict):
        _fail(path, "citations", "must be an object")
    return {key: _citation(path, f"citations[{key!r}]", value) for key, value in raw.items()}


# ---------------------------------------------------------------------------------------------- loading


def read_references(path: Path | str = REFERENCES_PATH) -> dict[str, Reference]:
    """Every reference of a references file, by id; one ReferencesError naming the entry for a malformed file."""
    path = Path(path)
    data = _read(path)
    citations = _citations(path, data)
    found: dict[str, Reference] = {}
    for index, raw in enumerate(data["references"]):
        reference = _reference(path, index, raw, citations)
        if reference.id in found:
            _fail(path, f"references[{index}] ({reference.id})", "repeats an id")
        found[reference.id] = reference
    return found


def read_presets(path: Path | str = REFERENCES_PATH) -> dict[str, tuple[Preset, ...]]:
    """Every page's presets (page -> presets in file order) of a references file."""
    path = Path(path)
    data = _read(path)
    citations = _citations(path, data)
    raw = data.get("presets", {})
    if not isinstance(raw, dict) or not all(isinstance(v, list) for v in raw.values()):
        _fail(path, "presets", "must map page names to lists of presets")
    if unknown := set(raw) - set(PAGES):
        _fail(path, "presets", f"names unknown pages {sorted(unknown)}")
    presets = {
        page: tuple(_preset(path, page, i, p, citations) for i, p in enumerate(raw.get(page, []))) for page in PAGES
    }
    for page, listed in presets.items():
        labels = [p.label for p in listed]
        if len(set(labels)) != len(labels) or NO_PRESET in labels:
            _fail(path, f"presets[{page!r}]", "needs distinct labels other than " + NO_PRESET)
    return presets


@functools.cache
def load_references() -> dict[str, Reference]:
    """The project's references (probes/data/references.json), by id, read once. Callers must not mutate it."""
    return read_references(REFERENCES_PATH)


@functools.cache
def _presets() -> dict[str, tuple[Preset, ...]]:
    return read_presets(REFERENCES_PATH)


def reference(reference_id: str) -> Reference:
    """One reference by id; KeyError naming the known ids for an unknown one."""
    found = load_references()
    if reference_id not in found:
        raise KeyError(f"No published reference {reference_id!r}; known: {', '.join(sorted(found))}.")
    return found[reference_id]


def presets(page: str) -> tuple[Preset, ...]:
    """The "Paper settings" presets of one probe page."""
    return _presets()[page]


def preset_options(page: str) -> list[str]:
    """The page's "Paper settings" options: NO_PRESET, then each preset's label."""
    return [NO_PRESET, *(preset.label for preset in presets(page))]


def preset(page: str, label: str | None) -> Preset | None:
    """The page's preset with this label; None for NO_PRESET, None or an unknown label."""
    return next((p for p in presets(page) if p.label == label), None)


def preset_state(page: str, label: str | None, n_layers: int | None = None) -> dict[str, object]:
    """The session-state values the chosen preset sets (empty for NO_PRESET)."""
    chosen = preset(page, label)
    return chosen.state(n_layers) if chosen is not None else {}


def preset_notes(page: str, label: str | None) -> list[str]:
    """What the chosen preset asks the user to load themselves, with its citation last."""
    chosen = preset(page, label)
    if chosen is None:
        return []
    return [*chosen.notes, f"Paper settings from {chosen.citation.text()}."]
