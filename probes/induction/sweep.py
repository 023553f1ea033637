"""Checkpoint sweep: one scan per training checkpoint, then best induction score and loss vs training step.

The sweep itself is a loop run by the CLI or the page, each checkpoint being its own cached scan run (so an
interrupted sweep resumes where it stopped). This module only names the checkpoints and assembles the curve.
Local folders (the embedded organism) keep checkpoints in `<folder>/revisions/<name>`; Hugging Face models with
Pythia-style branches are named `step<N>` (METHODS.md: step0, step1, 2, 4, ..., 512, then step1000 ... step143000);
the model catalog (probes/catalog.py) lists them for the hub models it knows.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from probes import catalog
from probes.induction.scores import ScanResult
from probes.models import EMBEDDED_MODEL_NAME, embedded_model_dir, local_revisions

FINAL = "final"  # label of the model without a revision (the end of training)


def revision_step(revision: str | None) -> int | None:
    """The training step a revision name carries ('step-1200', 'step1200' -> 1200), None for the final model."""
    if revision is None:
        return None
    digits = re.findall(r"\d+", revision)
    return int(digits[-1]) if digits else None


def local_model_folder(name: str) -> Path | None:
    if name == EMBEDDED_MODEL_NAME:
        return embedded_model_dir()
    folder = Path(name).expanduser()
    return folder if folder.is_dir() else None


def catalog_revisions(name: str) -> list[str]:
    """Every checkpoint the model catalog lists for a hub model (Pythia: step0 ... step143000), else []."""
    if local_model_folder(name) is not None:
        return []
    entry = catalog.find(name)
    return list(entry.revisions) if entry is not None else []


def default_revisions(name: str) -> list[str | None]:
    """Checkpoints to sweep by default: a local folder's saved revisions plus the final model; a catalog model's
    log-spaced subset of its checkpoints (Pythia: step0, 1, 2, 4 ... 512, 1000, 2000, 4000 ... 128000, 143000; the
    last one is the final model); any other hub model's final model only (the user lists its revisions)."""
    folder = local_model_folder(name)
    if folder is None and (entry := catalog.find(name)) is not None and entry.has_revisions:
        return list(entry.sweep_revisions)
    revisions: list[str | None] = list(local_revisions(folder)) if folder is not None else []
    return revisions + [None]


def parse_revisions(text: str) -> list[str | None]:
    """'0, 1000, step2000, final' -> ['step0', 'step1000', 'step2000', None]; bare numbers become Pythia names."""
    revisions: list[str | None] = []
    for part in re.split(r"[,\s]+", text.strip()):
        if not part:
            continue
        if part.lower() == FINAL:
            revisions.append(None)
        else:
            revisions.append(f"step{part}" if part.isdigit() else part)
    return revisions


def final_step(name: str) -> int | None:
    """The final model's training step when a local folder records it (metrics.json / assoclens.json)."""
    folder = local_model_folder(name)
    if folder is None:
        return None
    for filename in ("metrics.json", "assoclens.json"):
        path = folder / filename
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            for key in ("steps", "step", "final_step"):
                if isinstance(data.get(key), int):
                    return data[key]
            config = data.get("config") if isinstance(data.get("config"), dict) else {}
            if isinstance(config.get("steps"), int):
                return config["steps"]
    return None


@dataclass
class SweepPoint:
    revision: str | None
    step: int | None
    run_id: str
    scan: ScanResult  # the checkpoint's scan


def sweep_frame(points: list[SweepPoint], final: int | None = None) -> pd.DataFrame:
    """One row per checkpoint, ordered by step (the final model last, at `final` when known)."""
    rows = []
    for point in points:
        layer, head, score = point.scan.best_head()
        first, second = point.scan.half_losses()
        step = point.step if point.revision is not None or final is None else final
        rows.append({
            "revision": point.revision or FINAL, "step": step, "best_induction": score, "best_layer": layer,
            "best_head": head, "icl_score": point.scan.icl_score, "first_half_loss": first, "second_half_loss": second,
            "run_id": point.run_id,
        })  # fmt: skip
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    order = frame["step"].fillna(float("inf")).rank(method="first")
    return frame.assign(_order=order).sort_values("_order").drop(columns="_order").reset_index(drop=True)
