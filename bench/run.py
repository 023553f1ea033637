"""Benchmark entry point: every probe's time and peak memory next to its natural baseline, measured side by side.

    python bench/run.py [--quick] [--json] [--out DIR] [--only CASE ...] [--models LABEL ...] [--no-browser]

For each benchmark model (bench/models.py) it loads the model once and calls every case module in bench/cases
(`rows(model, model_label, quick) -> list[dict]`). A case that raises, times out or returns malformed rows becomes
an error entry; the other cases still run. Results: a markdown table on stderr, `bench.md` and `bench.json` in
`--out` (default bench/results/), and with `--json` exactly one JSON object on stdout. The exit status is non-zero
only when the runner itself fails. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import math
import os
import pkgutil
import platform
import re
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

PROCESS_STARTED = time.perf_counter()  # before torch and the models: the reported total includes them
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script: `python bench/run.py` puts bench/ first, not the repo root
    sys.path.insert(0, str(REPO_ROOT))

DEFAULT_OUT = REPO_ROOT / "bench" / "results"
QUICK_BUDGET_S = 120.0  # `--quick` must finish in 2 minutes on 2 CPU cores
QUICK_CASE_TIMEOUT_S = 600.0  # hang guard for one case on one model in a quick run; past it: an error entry
REQUIRED_FIELDS = ("name", "ratio", "probe_s", "baseline_s")
TARGET_PATTERN = re.compile(r"^\s*(<=|>=|<|>)\s*([0-9]*\.?[0-9]+)\s*x?\s*$")


class CaseTimeout(BaseException):
    """A case ran past its time limit (a BaseException, so a case's own `except Exception` cannot swallow it)."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python bench/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats (< 2 min on 2 cores)")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="folder for bench.md and bench.json")
    parser.add_argument("--only", nargs="+", metavar="CASE", help="run only these cases (e.g. cache induction)")
    parser.add_argument("--models", nargs="+", metavar="LABEL", help="benchmark models (default: all for device)")
    parser.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda")
    parser.add_argument("--no-browser", action="store_true", help="skip the browser render row of the cache case")
    parser.add_argument(
        "--case-timeout", type=float, default=None,
        help=f"seconds one case may take on one model (default {QUICK_CASE_TIMEOUT_S:.0f} with --quick, else none)",
    )  # fmt: skip
    return parser.parse_args(argv)


def available_cases() -> list[str]:
    import bench.cases

    return sorted(info.name for info in pkgutil.iter_modules(bench.cases.__path__) if not info.name.startswith("_"))


def parse_target(target: str | None) -> tuple[str, float] | None:
    if not target:
        return None
    match = TARGET_PATTERN.match(str(target))
    return (match.group(1), float(match.group(2))) if match else None


def target_status(ratio: float, target: str | None) -> str | None:
    """'met' / 'missed' for a target like '<= 1.5' or '>= 0.8'; 'unparsed' when the string is not one; None if no
    target."""
    if not target:
        return None
    parsed = parse_target(target)
    if parsed is None:
        return "unparsed"
    op, bound = parsed
    met = {"<=": ratio <= bound, ">=": ratio >= bound, "<": ratio < bound, ">": ratio > bound}[op]
    return "met" if met else "missed"


def _finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def normalise(raw: object, case: str, model_label: str) -> tuple[str, dict]:
    """Sort one returned row into ('row', row) / ('skipped', entry) / ('error', entry), checking the schema."""
    if not isinstance(raw, dict):
        return "error", {"name": f"{case} [{model_label}]", "case": case, "model": model_label,
                         "error": f"schema: a row must be a dict, got {type(raw).__name__}"}  # fmt: skip
    name = str(raw.get("name") or case)
    if model_label not in name:
        name = f"{name} [{model_label}]"
    base = {"name": name, "case": case, "model": model_label}
    if raw.get("skipped"):
        return "skipped", {**base, "note": str(raw["skipped"])}
    if raw.get("error"):
        return "error", {**base, "error": str(raw["error"])}
    problems = [field for field in REQUIRED_FIELDS[1:] if not _finite_number(raw.get(field))]
    if problems:
        shown = ", ".join(f"{field}={raw.get(field)!r}" for field in problems)
        return "error", {**base, "error": f"schema: {shown} (need finite numbers)"}
    row = {**raw, **base, "ratio": float(raw["ratio"]), "probe_s": float(raw["probe_s"]),
           "baseline_s": float(raw["baseline_s"])}  # fmt: skip
    row["target"] = raw.get("target")
    row["target_status"] = target_status(row["ratio"], row["target"])
    return "row", _json_safe(row)


def _json_safe(value: object) -> object:
    """Plain JSON values: non-finite floats become None, numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise CaseTimeout in the main thread after `seconds` (checked when control returns to Python)."""
    if not seconds or not hasattr(signal, "SIGALRM"):
        yield
        return

    def expire(signum, frame):
        raise CaseTimeout(f"timed out after {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _cpu_seconds() -> float:
    """CPU time of this process (all threads) plus its finished children (the browser case's server and Chromium)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _one_line(error: BaseException) -> str:
    text = " ".join((str(error) or "").split())[:400]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def machine_info(device: str) -> dict:
    import torch

    info = {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": device,
        "gpu": torch.cuda.get_device_name(0) if device.startswith("cuda") else None,
        "commit": _git_commit(),
    }
    try:
        from importlib import metadata

        info["transformers"] = metadata.version("transformers")
        info["transformer_lens"] = metadata.version("transformer-lens")
    except Exception:
        pass
    return info


def _git_commit() -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=5)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def run_benchmarks(args: argparse.Namespace) -> dict:
    import torch

    from bench import models as bench_models
    from probes.models import resolve_device

    load_at_start = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    if args.no_browser:
        os.environ["ASSOCLENS_BENCH_BROWSER"] = "0"
    device = resolve_device(args.device)
    known = available_cases()
    cases = args.only or known
    unknown = [case for case in cases if case not in known]
    if unknown:
        raise SystemExit(f"error: unknown case(s) {', '.join(unknown)}; available: {', '.join(known)}")
    labels = args.models or bench_models.default_labels(device, quick=args.quick)
    for label in labels:
        if label not in bench_models.LABELS:
            raise SystemExit(f"error: unknown model {label!r}; available: {', '.join(bench_models.LABELS)}")
    case_timeout = args.case_timeout
    if case_timeout is None and args.quick:
        case_timeout = QUICK_CASE_TIMEOUT_S

    rows: list[dict] = []
    skipped: list[dict] = []
    errors: list[dict] = []
    case_seconds: dict[str, float] = {}  # wall time per case and model
    case_cpu_seconds: dict[str, float] = {}  # CPU time (this process and its children): robust to other load
    model_info: dict[str, dict] = {}
    modules = {}
    for case in cases:
        try:
            modules[case] = importlib.import_module(f"bench.cases.{case}")
            if not callable(getattr(modules[case], "rows", None)):
                raise AttributeError(f"bench/cases/{case}.py defines no rows(model, model_label, quick)")
        except Exception as error:
            modules.pop(case, None)
            errors.append({"name": case, "case": case, "model": None, "error": f"import: {_one_line(error)}"})
            _log(f"[bench] {case}: cannot import: {_one_line(error)}")

    for label in labels:
        _log(f"[bench] loading {label} on {device} ...")
        loading = time.perf_counter()
        try:
            model, spec = bench_models.load(label, device=device)
        except Exception as error:
            for case in modules:
                errors.append({"name": f"{case} [{label}]", "case": case, "model": label,
                               "error": f"model load: {_one_line(error)}"})  # fmt: skip
            _log(f"[bench] {label}: cannot load: {_one_line(error)}")
            continue
        model_info[label] = {**bench_models.describe_model(model, spec), "load_s": time.perf_counter() - loading}
        _log(f"[bench] {label}: {model_info[label]['parameters'] / 1e6:.1f}M parameters, loaded in "
             f"{model_info[label]['load_s']:.1f} s")  # fmt: skip
        for case, module in modules.items():
            case_started, cpu_started = time.perf_counter(), _cpu_seconds()
            try:
                with time_limit(case_timeout):
                    returned = module.rows(model, label, args.quick)
                returned = list(returned or [])
            except (Exception, CaseTimeout) as error:
                returned = [{"name": case, "error": _one_line(error)}]
                _log(f"[bench] {case} [{label}] failed: {_one_line(error)}")
                if not isinstance(error, CaseTimeout):
                    _log("".join(traceback.format_exception(error)[-3:]).rstrip())
            elapsed = time.perf_counter() - case_started
            case_seconds[f"{case} [{label}]"] = round(elapsed, 2)
            case_cpu_seconds[f"{case} [{label}]"] = round(_cpu_seconds() - cpu_started, 2)
            for raw in returned:
                kind, entry = normalise(raw, case, label)
                {"row": rows, "skipped": skipped, "error": errors}[kind].append(entry)
            _log(f"[bench] {case} [{label}]: {len(returned)} row(s) in {elapsed:.1f} s")
        del model
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    total_s = time.perf_counter() - PROCESS_STARTED
    report = {
        "rows": rows,
        "errors": errors,
        "skipped": skipped,
        "quick": bool(args.quick),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "total_s": round(total_s, 2),
        "quick_budget_s": QUICK_BUDGET_S if args.quick else None,
        "case_seconds": case_seconds,
        "case_cpu_seconds": case_cpu_seconds,
        "cpu_s": round(_cpu_seconds(), 2),
        "models": model_info,
        "machine": machine_info(device),
    }
    report["machine"]["load_average_start"] = load_at_start
    report["machine"]["dtype"] = ", ".join(sorted({info["dtype"] for info in model_info.values()})) or None
    if args.quick and total_s > QUICK_BUDGET_S:
        slowest = sorted(case_seconds.items(), key=lambda item: -item[1])[:3]
        report["budget_warning"] = (
            f"quick run took {total_s:.0f} s wall ({report['cpu_s']:.0f} s CPU; load average at start "
            f"{load_at_start}), over its {QUICK_BUDGET_S:.0f} s budget; slowest: "
            + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in slowest)
        )
    return _json_safe(report)


def _fmt(value: object, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value).replace("|", "\\|")


def markdown(report: dict) -> str:
    machine = report["machine"]
    lines = [
        f"# AssocLens benchmarks ({'quick' if report['quick'] else 'full'} run, {report['date']})",
        "",
        f"Machine: {machine['cpu_count']} CPUs ({machine['cpus_usable']} usable; 1/5/15-min load average "
        f"{machine.get('load_average_start')} at start, {machine.get('load_average')} at end), "
        f"device {machine['device']}"
        + (f" ({machine['gpu']})" if machine.get("gpu") else "")
        + f", dtype {machine.get('dtype')}, torch {machine['torch']}, commit {machine.get('commit')}. "
        f"Total {report['total_s']:.1f} s wall, {report['cpu_s']:.1f} s CPU.",
        "",
        "Ratio is probe / baseline (lower is better) unless the row's note says it is a speed-up or throughput "
        "ratio (higher is better); times are medians over `repeats` runs, peaks are extra memory above the "
        "starting point (CUDA allocator peak on GPU, sampled RSS on CPU).",
        "",
        "| case | model | row | probe s | baseline s | ratio | target | status | probe MB | baseline MB | repeats |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        lines.append(
            "| " + " | ".join(_fmt(v) for v in (
                row["case"], row["model"], row["name"], row["probe_s"], row["baseline_s"], row["ratio"],
                row.get("target"), row.get("target_status"), row.get("probe_peak_mb"), row.get("baseline_peak_mb"),
                row.get("repeats"),
            )) + " |"
        )  # fmt: skip
    notes = [row for row in report["rows"] if row.get("note")]
    if notes:
        lines += ["", "Notes:", ""] + [f"- {row['name']}: {row['note']}" for row in notes]
    if report["skipped"]:
        lines += ["", "Skipped:", ""] + [f"- {entry['name']}: {entry['note']}" for entry in report["skipped"]]
    if report["errors"]:
        lines += ["", "Errors (the other cases still ran):", ""]
        lines += [f"- {entry['name']}: {entry['error']}" for entry in report["errors"]]
    lines += ["", "Seconds per case and model (wall; CPU time of the process and its children in brackets):", ""]
    lines += [
        f"- {name}: {seconds:.1f} ({report['case_cpu_seconds'].get(name, 0):.1f} CPU)"
        for name, seconds in report["case_seconds"].items()
    ]
    if report["models"]:
        lines += ["", "Models:", ""]
        for label, info in report["models"].items():
            lines.append(
                f"- {label}: {info['parameters'] / 1e6:.1f}M parameters, {info['n_layers']} layers, d_model "
                f"{info['d_model']}, {info['device']} / {info['dtype']}, loaded in {info['load_s']:.1f} s"
            )
    if report.get("budget_warning"):
        lines += ["", f"**Budget: {report['budget_warning']}**"]
    return "\n".join(lines) + "\n"


def write_outputs(report: dict, out: Path) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "bench.md", "json": out / "bench.json"}
    paths["markdown"].write_text(markdown(report))
    paths["json"].write_text(json.dumps(report, indent=2) + "\n")
    return {kind: str(path) for kind, path in paths.items()}


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # every benchmark model is local; never wait on the network
    args = parse_args(argv)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # libraries print; stdout carries only the JSON object
            report = run_benchmarks(args)
            report["outputs"] = write_outputs(report, Path(args.out))
    except SystemExit as stop:
        if isinstance(stop.code, str):
            _log(stop.code)
            return 2
        raise
    except Exception as error:
        _log(f"error: the benchmark runner failed: {_one_line(error)}")
        _log(traceback.format_exc())
        return 1
    _log("")
    _log(markdown(report))
    if args.json:
        sys.stdout.write(json.dumps(report) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
