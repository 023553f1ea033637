"""Reproducible run bundles, the pure part: the CLI command that recomputes a run (built from its stored config),
table comparison within a tolerance, manifest digests, the machine's description and the figures' static export.

The bundle itself (a folder or zip of one stored run) is written by `probes/cli/bundle.py`, which may read the
store; this module imports neither `cache` nor Streamlit (tests/test_import_rules.py).

Bundle layout (`<probe>-<12-char run id>/`):

    README.md            what is included and how to recompute it
    provenance.json      the run's provenance plus the machine it was bundled on
    summary.json         the run's summary
    command.txt          the CLI command that recomputes the run (or why there is none)
    tables/<name>.parquet, tables/<name>.csv
    figures/<n>-<slug>.html (+ .png, .svg when the static export can start a browser)
    inputs/              the input files the run read (when they can be rebuilt), inputs/digests.json always:
                         testbed/<file> (curves, RW-Steering fine-tuning), split.json (a mitigation's held-out
                         curves: the fine-tuning run whose split they scored), prompt_sets.json, vector.* (steering,
                         steered curves, ladders), vocabulary.json (ladders), explore.json (an explored context)
    files/               the run's stored files (e.g. a steering vector's safetensors), when it has any
    MANIFEST.json        sha256 and size of every other file
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import platform
import re
import shlex
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

MANIFEST = "MANIFEST.json"
EXACT = {"rtol": 0.0, "atol": 0.0}  # deterministic CPU runs reproduce bit for bit
LOOSE = {"rtol": 1e-5, "atol": 1e-8}  # GPU runs (kernels may reorder sums) and runs recomputed on another device
STATIC_FORMATS = ("png", "svg")
CLI = ("python", "-m", "probes")
TIMING_COLUMN = re.compile(r"(^|_)(seconds|duration|duration_s|elapsed|elapsed_s|wall_s|time_s)$")  # wall-clock


class BundleError(ValueError):
    """A bundle that cannot be read or trusted (missing or altered file); the message names the file."""


# --- the command that recomputes a run --------------------------------------------------------------------


@dataclass(frozen=True)
class Flag:
    """How one config field is written on the command line.

    kind: "value" (--flag=V), "csv" (--flag=a,b), "nargs" (--flag a b), "off" (--flag when the field is False),
    "append" (--flag=V)."""

    field: str
    flag: str
    kind: str = "value"


def _text(value: object) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _flag_tokens(flag: Flag, value: object) -> list[str]:
    if flag.kind == "off":
        return [] if value else [flag.flag]
    if flag.kind == "nargs":
        values = list(value or [])
        return [flag.flag, *map(_text, values)] if values else []
    if flag.kind == "csv":
        values = list(value or [])
        return [f"{flag.flag}={','.join(map(_text, values))}"] if values else []
    return [f"{flag.flag}={_text(value)}"]


def _same(stored: object, default: object) -> bool:
    """A stored (JSON) value equals a dataclass default (tuples stored as lists)."""
    return json.loads(json.dumps(default, default=str)) == stored


@dataclass(frozen=True)
class CommandSpec:
    """The CLI command of one probe: its words, the flags per config field, and the fields no flag sets (the
    command can recompute only runs where those have their defaults)."""

    words: tuple[str, ...]
    flags: tuple[Flag, ...]
    config_type: type
    takes_model: bool = True
    note: str = ""  # what else the command does, or where its JSON prints this run's id (the README says it)

    def argv(self, config: Mapping, model_id: str | None, revision: str | None, extra: Sequence[str] = ()) -> list[str]:
        """The argument list (without `python -m probes`); raises BundleError when the config has a value the
        command line cannot set."""
        flagged = {flag.field for flag in self.flags}
        defaults = {f.name: f.default for f in fields(self.config_type)}
        fixed = [name for name in config if name not in flagged and not _same(config[name], defaults.get(name))]
        if fixed:
            raise BundleError(
                f"no command line sets {', '.join(fixed)} of this {self.words[-1]} run (only the page or the API does)"
            )
        argv = list(self.words)
        if self.takes_model:
            argv.append(f"--model={model_id}")
            if revision:
                argv.append(f"--revision={revision}")
        for flag in self.flags:
            if flag.field in config:
                argv.extend(_flag_tokens(flag, config[flag.field]))
        return [*argv, *extra, "--json"]


def _command_specs() -> dict[str, CommandSpec]:
    from probes.induction import attention, emergence, scores
    from probes.poisoned import EXPLORE_NAME, CurveConfig, ExploreConfig
    from probes.poisoned import mitigate as rw_steering
    from probes.spectra import memory, transformer, weights
    from probes.steering import SweepConfig, VectorConfig

    return {
        scores.NAME: CommandSpec(("induction", "scan"), (
            Flag("seq_len", "--seq-len"), Flag("n_seqs", "--n-seqs"), Flag("seed", "--seed"),
            Flag("prepend_bos", "--no-bos", "off"), Flag("copying", "--no-copying", "off"), Flag("top_k", "--top-k"),
        ), scores.ScanConfig),
        attention.NAME: CommandSpec(("induction", "attention"), (
            Flag("text", "--text"), Flag("layer", "--layer"), Flag("head", "--head"),
            Flag("prepend_bos", "--no-bos", "off"),
        ), attention.TextAttentionConfig),
        emergence.NAME: CommandSpec(("induction", "train"), (
            Flag("task", "--task"), Flag("steps", "--steps"), Flag("seed", "--seed"), Flag("lr", "--lr"),
            Flag("batch_size", "--batch-size"), Flag("record_every", "--record-every"),
            Flag("n_layers", "--n-layers"), Flag("n_heads", "--n-heads"), Flag("seq_len", "--seq-len"),
            Flag("vocab_size", "--vocab-size"), Flag("n_classes", "--n-classes"), Flag("burstiness", "--burstiness"),
            Flag("p_bursty", "--p-bursty"), Flag("p_novel", "--p-novel"), Flag("zipf_alpha", "--zipf-alpha"),
            Flag("n_pairs", "--n-pairs"), Flag("n_labels", "--n-labels"), Flag("noise", "--noise"),
        ), emergence.TrainConfig, takes_model=False),
        memory.NAME: CommandSpec(("spectra", "memory"), (
            Flag("n_classes", "--k"), Flag("d_model", "--d"), Flag("steps", "--steps"),
            Flag("embeddings", "--embeddings"), Flag("frequencies", "--frequencies"),
            Flag("zipf_exponent", "--zipf-exponent"), Flag("imbalance_ratio", "--imbalance-ratio"),
            Flag("batch_size", "--batch-size"), Flag("eps", "--eps"), Flag("optimizers", "--optimizers", "nargs"),
            Flag("lr_gd", "--lr-gd"), Flag("lr_signgd", "--lr-signgd"), Flag("lr_adam", "--lr-adam"),
            Flag("lr_muon", "--lr-muon"), Flag("muon_momentum", "--muon-momentum"),
            Flag("muon_weight_decay", "--muon-weight-decay"), Flag("seed", "--seed"),
        ), memory.MemoryConfig, takes_model=False),
        transformer.NAME: CommandSpec(("spectra", "transformer"), (
            Flag("setups", "--setups", "nargs"), Flag("steps", "--steps"), Flag("n_individuals", "--individuals"),
            Flag("zipf_exponent", "--zipf-exponent"), Flag("lr_adam", "--lr-adam"), Flag("lr_muon", "--lr-muon"),
            Flag("seed", "--seed"),
        ), transformer.TransformerConfig, takes_model=False),
        weights.NAME: CommandSpec(("spectra", "weights"), (Flag("top_k", "--top-k"),), weights.WeightsConfig,
                                  note="Its JSON prints this run's id as `models[0].run_id`."),
        "poisoned": CommandSpec(("poisoned", "curve"), (
            Flag("n_items", "--n-items"), Flag("proportion_steps", "--steps"),
            Flag("positions", "--position", "nargs"), Flag("max_items_per_category", "--max-items"),
            Flag("categories", "--category", "nargs"), Flag("source_tags", "--no-tags", "off"),
            Flag("strength", "--strength", "append"), Flag("scoring", "--scoring"),
            Flag("chat_template", "--chat-template"), Flag("n_bootstrap", "--bootstrap"),
            Flag("n_generated", "--generate"), Flag("seed", "--seed"),
        ), CurveConfig),
        EXPLORE_NAME: CommandSpec(("poisoned", "explore"), (
            Flag("n_inappropriate", "--n-bad"), Flag("position", "--position"), Flag("scoring", "--scoring"),
            Flag("chat_template", "--chat-template"), Flag("seed", "--seed"),
        ), ExploreConfig),
        rw_steering.NAME: CommandSpec(("poisoned", "mitigate"), (
            Flag("method", "--method"), Flag("held_out_share", "--held-out"), Flag("split_seed", "--split-seed"),
            Flag("n_items", "--n-items"), Flag("stage1_steps", "--stage1-steps"),
            Flag("stage2_steps", "--stage2-steps"), Flag("batch_size", "--batch-size"),
            Flag("learning_rate", "--learning-rate"), Flag("lora_rank", "--lora-rank"),
            Flag("chat_template", "--chat-template"), Flag("seed", "--seed"),
        ), rw_steering.MitigateConfig, note=(
            "`poisoned mitigate` runs the whole mitigation: the held-out curve before, this fine-tuning run (its id "
            "is `tuning.run_id` in the JSON; the tuned revision is saved under $ASSOCLENS_TUNED_DIR) and the tuned "
            "model's curve after; add `--steps`, `--position`, `--scoring`, `--bootstrap` for the curves, they do "
            "not change the fine-tuning run."
        )),
        "steering.vectors": CommandSpec(("steering", "vectors"), (
            Flag("layers", "--layers", "csv"), Flag("top_n_pairs", "--n-pairs"), Flag("pairing", "--pairing"),
            Flag("unit", "--unit"), Flag("relative_norm", "--relative-norm"), Flag("seed", "--seed"),
            Flag("chat_template", "--chat-template"),
        ), VectorConfig),
        "steering": CommandSpec(("steering", "sweep"), (
            Flag("strengths", "--strengths", "csv"), Flag("layers", "--layers", "csv"),
            Flag("n_prompt_positions", "--positions"), Flag("task_strength", "--task-strength"),
            Flag("n_facts", "--n-facts"), Flag("max_new_tokens", "--max-new-tokens"),
            Flag("random_baseline", "--no-random-baseline", "off"), Flag("seed", "--seed"),
            Flag("chat_template", "--chat-template"),
        ), SweepConfig),
    }  # fmt: skip


def command_argv(
    probe: str, config: Mapping, model_id: str | None, revision: str | None, extra: Sequence[str] = ()
) -> list[str]:
    """`python -m probes ...` arguments that recompute a run of `probe` with this stored config (`extra`: the
    input arguments the caller worked out, e.g. --testbed). Raises BundleError when no CLI command does."""
    spec = _command_specs().get(probe)
    if spec is None:
        raise BundleError(f"the {probe!r} probe has no one-run CLI command")
    return spec.argv(config, model_id, revision, extra)


def command_note(probe: str) -> str:
    """What the probe's command does besides recomputing the run ("" for a plain one-run command)."""
    spec = _command_specs().get(probe)
    return spec.note if spec is not None else ""


def explore_args(inputs: Mapping) -> list[str]:
    """The input arguments of a `poisoned explore` command: the question, segments and candidates typed (the stored
    explore inputs, `ExploreInput.as_dict()`), each as --flag=VALUE so a value starting with '-' stays a value."""
    return [
        f"--question={inputs['question']}",
        *(f"--segment={text}" for text in inputs["appropriate"]),
        *(f"--bad-segment={text}" for text in inputs["inappropriate"]),
        *(f"--answer={text}" for text in inputs["candidates"]),
    ]


MITIGATION_CURVE_FLAGS = (
    Flag("proportion_steps", "--steps"), Flag("positions", "--position", "nargs"), Flag("scoring", "--scoring"),
    Flag("n_bootstrap", "--bootstrap"),
)  # fmt: skip
MITIGATION_SHARED = ("n_items", "chat_template", "seed")  # `poisoned mitigate` sets these for the tuning and the curves


def mitigation_curve_args(curve_config: Mapping, tuning_config: Mapping, held_out_items: int, after: bool) -> list[str]:
    """The curve arguments (--steps, --position, --scoring, --bootstrap) of the `poisoned mitigate` command whose
    held-out curve (before the fine-tuning, or `after` it: judgement first) is this run: every other curve setting
    must be what that command sets (the tuning run's n_items, chat template and seed, every held-out item, all
    categories, the CLI's defaults). Raises BundleError naming the settings no `poisoned mitigate` command gives."""
    from probes.poisoned import CurveConfig

    expected = {f.name: f.default for f in fields(CurveConfig)}
    expected.update({name: tuning_config.get(name) for name in MITIGATION_SHARED})
    expected.update({"max_items_per_category": held_out_items, "categories": (), "judge_first": after})
    flagged = {flag.field for flag in MITIGATION_CURVE_FLAGS}
    differ = [name for name, value in curve_config.items() if name not in flagged
              and (name not in expected or not _same(value, expected[name]))]  # fmt: skip
    if differ:
        raise BundleError(
            f"no `poisoned mitigate` command sets {', '.join(differ)} of this held-out curve as the run has them"
        )
    return [token for flag in MITIGATION_CURVE_FLAGS for token in _flag_tokens(flag, curve_config[flag.field])]


def mitigation_note(after: bool, tuning_run_id: str) -> str:
    """What the `poisoned mitigate` command of a held-out curve does besides recomputing it (the README says it)."""
    common = (
        f"`poisoned mitigate` runs the whole RW-Steering mitigation: the base model's held-out curve before, the "
        f"fine-tuning run ({tuning_run_id[:12]}: `tuning.run_id` in the JSON; the tuned revision is saved under "
        "$ASSOCLENS_TUNED_DIR) and the tuned model's held-out curve after; "
    )
    if not after:
        return common + "this run is the curve before (`before.run_id` in the JSON)."
    return common + (
        "this run is the curve after (`after.run_id` in the JSON). Its key holds the tuned folder's content digest: "
        "the command gives this run's id where the fine-tuning reproduces bit for bit (deterministic CPU training); "
        "`cache reproduce` recomputes this very run where its tuned folder is under $ASSOCLENS_TUNED_DIR."
    )


def vector_args(vector_config: Mapping, sweep_config: Mapping) -> list[str]:
    """The vector-building arguments of a `steering sweep` command (the sweep builds its vector from the same
    arguments): the vector run's config, which must share the sweep's seed, prompt format and layers."""
    for name in ("seed", "chat_template", "layers"):
        if vector_config.get(name) != sweep_config.get(name):
            raise BundleError(f"the sweep and its vector differ in {name}; no single command builds both")
    built = command_argv("steering.vectors", vector_config, None, None)
    shared = ("--layers", "--seed", "--chat-template", "--model", "--revision", "--json")
    return [token for token in built[2:] if not token.startswith(shared)]


def command_line(argv: Sequence[str]) -> str:
    return shlex.join([*CLI, *argv])


# --- comparing tables ---------------------------------------------------------------------------------------


def tolerance_for(stored_device: str | None, device_now: str | None) -> dict:
    """Exact when the run and its recomputation are both CPU runs; else a relative tolerance (GPU kernels)."""
    if (stored_device or "cpu").startswith("cpu") and (device_now or "cpu").startswith("cpu"):
        return dict(EXACT)
    return dict(LOOSE)


def _numeric(series: pd.Series) -> pd.Series | None:
    if pd.api.types.is_bool_dtype(series):
        return None
    if pd.api.types.is_numeric_dtype(series):
        return series.astype("float64")
    if series.dtype == object:
        values = [v for v in series if v is not None and not (isinstance(v, float) and math.isnan(v))]
        if values and all(isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in values):
            return pd.to_numeric(series, errors="coerce").astype("float64")
    return None


def compare_table(name: str, expected: pd.DataFrame, actual: pd.DataFrame | None, rtol: float, atol: float) -> dict:
    """One table's verdict: match, and per numeric column the max absolute difference. Wall-clock columns
    (`seconds`, `*_duration`, ...) are reported but never decide the match."""
    report: dict = {"table": name, "match": False, "rows": len(expected), "max_abs_diff": {}, "mismatched": [],
                    "timing_columns": []}  # fmt: skip
    if actual is None:
        report["problem"] = "the recomputed run has no such table"
        return report
    if list(expected.columns) != list(actual.columns):
        report["problem"] = f"columns differ: stored {list(expected.columns)}, recomputed {list(actual.columns)}"
        return report
    if len(expected) != len(actual):
        report["problem"] = f"row counts differ: stored {len(expected)}, recomputed {len(actual)}"
        return report
    left, right = expected.reset_index(drop=True), actual.reset_index(drop=True)
    for column in expected.columns:
        a, b = _numeric(left[column]), _numeric(right[column])
        if a is not None and b is not None:
            x, y = a.to_numpy(), b.to_numpy()
            with np.errstate(invalid="ignore", over="ignore"):  # inf - inf, nan: handled below
                both_nan = np.isnan(x) & np.isnan(y)
                diff = np.where(both_nan, 0.0, np.abs(x - y))
                finite = diff[np.isfinite(diff)]
                equal = (x == y) | both_nan | (diff <= atol + rtol * np.abs(x))
            report["max_abs_diff"][column] = float(finite.max()) if finite.size else 0.0
            if TIMING_COLUMN.search(str(column)):
                report["timing_columns"].append(column)
            elif not bool(np.all(equal)):
                report["mismatched"].append(column)
        elif not left[column].astype(str).equals(right[column].astype(str)):
            report["mismatched"].append(column)
    report["match"] = not report["mismatched"]
    return report


def compare_tables(expected: Mapping[str, pd.DataFrame], actual: Mapping[str, pd.DataFrame], rtol: float,
                   atol: float) -> list[dict]:  # fmt: skip
    reports = [compare_table(name, frame, actual.get(name), rtol, atol) for name, frame in expected.items()]
    for name in actual:
        if name not in expected:
            reports.append({"table": name, "match": False, "problem": "the stored run has no such table"})
    return reports


# --- manifest -----------------------------------------------------------------------------------------------


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def manifest_for(files: Mapping[str, bytes]) -> dict:
    """sha256 and size of every file (paths relative to the bundle folder, '/'-separated)."""
    listed = {name: {"sha256": sha256(files[name]), "bytes": len(files[name])} for name in sorted(files)}
    return {"algorithm": "sha256", "files": listed}


def verify_manifest(files: Mapping[str, bytes]) -> None:
    """Raise BundleError naming the first file that is missing, altered or not listed."""
    if MANIFEST not in files:
        raise BundleError(f"the bundle has no {MANIFEST}; it cannot be verified")
    try:
        listed = json.loads(files[MANIFEST])["files"]
    except (ValueError, KeyError, TypeError):
        raise BundleError(f"{MANIFEST} is not a valid manifest") from None
    for name, entry in listed.items():
        if name not in files:
            raise BundleError(f"{name} is missing from the bundle (listed in {MANIFEST})")
        if sha256(files[name]) != entry.get("sha256"):
            raise BundleError(f"{name} was altered: its sha256 differs from the one in {MANIFEST}")
    extra = sorted(set(files) - set(listed) - {MANIFEST})
    if extra:
        raise BundleError(f"{extra[0]} is in the bundle but not in {MANIFEST}")


def read_bundle(path: Path | str) -> dict[str, bytes]:
    """Every file of a bundle folder or zip, by path relative to the bundle folder."""
    path = Path(path)
    if path.is_dir():
        return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = [info.filename for info in archive.infolist() if not info.is_dir()]
            roots = {name.split("/", 1)[0] for name in names}
            strip = len(roots) == 1 and all("/" in name for name in names)
            return {(name.split("/", 1)[1] if strip else name): archive.read(name) for name in names}
    raise BundleError(f"{path} is neither a bundle folder nor a bundle zip")


def zip_bytes(folder_name: str, files: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            archive.writestr(f"{folder_name}/{name}", files[name])
    return buffer.getvalue()


# --- the machine --------------------------------------------------------------------------------------------


def machine() -> dict:
    try:
        import torch

        torch_version, cuda = torch.__version__, torch.cuda.is_available()
    except ImportError:  # pragma: no cover - torch is a runtime dependency
        torch_version, cuda = "absent", False
    return {"python": sys.version.split()[0], "platform": platform.platform(), "machine": platform.machine(),
            "torch": torch_version, "cuda_available": cuda}  # fmt: skip


# --- figures ------------------------------------------------------------------------------------------------


def slug(text: str, limit: int = 40) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:limit].rstrip("-") or "figure"


def figure_title(figure) -> str:
    title = figure.layout.title.text if figure.layout.title is not None else None
    return re.sub(r"<[^>]+>", " ", title or "")


def figure_names(figures: Sequence) -> list[str]:
    return [f"{index + 1:02d}-{slug(figure_title(figure))}" for index, figure in enumerate(figures)]


def html_files(figures: Sequence, names: Sequence[str], plotlyjs: str | bool = "cdn") -> dict[str, bytes]:
    return {f"figures/{name}.html": figure.to_html(include_plotlyjs=plotlyjs, full_html=True).encode()
            for figure, name in zip(figures, names, strict=True)}  # fmt: skip


def browser_path() -> str | None:
    """The browser the static export drives: $BROWSER_PATH, else the first Chrome/Chromium on PATH (the order
    kaleido's choreographer searches)."""
    try:
        from choreographer.browsers.chromium import Chromium

        found = Chromium.find_browser(skip_local=True)
    except Exception:  # noqa: BLE001 - not installed, or an API change: say what we can
        import os
        import shutil

        found = os.environ.get("BROWSER_PATH") or shutil.which("chromium") or shutil.which("google-chrome")
    return str(found) if found else None


def static_export(figures: Sequence, names: Sequence[str]) -> dict[str, bytes]:
    """PNG and SVG of every figure, rendered by Plotly's static export (kaleido driving a headless Chromium), in one
    browser session. Raises when kaleido or a browser is missing or the browser cannot start."""
    import plotly.io as pio

    if not figures:
        return {}
    with tempfile.TemporaryDirectory(prefix="assoclens-figures-") as folder:
        targets, figs, widths, heights = [], [], [], []
        for figure, name in zip(figures, names, strict=True):
            for fmt in STATIC_FORMATS:
                targets.append(Path(folder) / f"{name}.{fmt}")
                figs.append(figure)
                widths.append(figure.layout.width or None)
                heights.append(figure.layout.height or None)
        pio.write_images(figs, targets, width=widths, height=heights)
        return {f"figures/{path.name}": path.read_bytes() for path in targets}


def static_files(
    figures: Sequence, names: Sequence[str], export: Callable[[Sequence, Sequence[str]], dict[str, bytes]] | None = None
) -> tuple[dict[str, bytes], str | None]:
    """(PNG/SVG files, None) or ({}, the one-line reason they were skipped)."""
    if not figures:
        return {}, None
    try:
        files = (export or static_export)(figures, names)
    except Exception as error:  # noqa: BLE001 - any failure to start or drive the browser only skips PNG/SVG
        reason = " ".join(str(error).split())[:300] or type(error).__name__
        return {}, f"PNG/SVG figures skipped: the static export could not run ({reason}); the HTML figures are there."
    return files, None


def to_json(value: object) -> bytes:
    def default(item: object) -> object:
        if hasattr(item, "item"):
            return item.item()
        if hasattr(item, "isoformat"):
            return item.isoformat()
        return str(item)

    return (json.dumps(value, indent=2, sort_keys=True, default=default) + "\n").encode()


__all__ = [
    "EXACT",
    "LOOSE",
    "MANIFEST",
    "BundleError",
    "command_argv",
    "command_line",
    "command_note",
    "explore_args",
    "mitigation_curve_args",
    "mitigation_note",
    "compare_tables",
    "machine",
    "manifest_for",
    "read_bundle",
    "static_files",
    "tolerance_for",
    "verify_manifest",
    "zip_bytes",
]
