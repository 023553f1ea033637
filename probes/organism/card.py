"""metrics.json, MODEL_CARD.md and SHA256SUMS for a trained organism folder."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def checksums(folder: Path) -> str:
    """sha256sum-style lines for every file under the folder except SHA256SUMS itself."""
    lines = []
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file() and path.name != "SHA256SUMS":
            lines.append(f"{sha256_of(path)}  {path.relative_to(folder).as_posix()}")
    return "\n".join(lines) + "\n"


def write_outputs(folder: Path, metrics: dict) -> dict:
    """Write metrics.json (with the weights' sha256), MODEL_CARD.md and SHA256SUMS; return the metrics."""
    folder = Path(folder)
    metrics = {**metrics, "model_safetensors_sha256": sha256_of(folder / "model.safetensors")}
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    from probes.organism.card_text import render_card

    (folder / "MODEL_CARD.md").write_text(render_card(metrics))
    (folder / "SHA256SUMS").write_text(checksums(folder))
    return metrics
