"""`python -m probes poisoned validate|curve|explore` and `python -m probes rw-fit`: poisoned-context curves."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

import numpy as np

from cache import digest_json
from probes import coverage
from probes.cli import UserError, add_model_args, add_output_args, run_probe, spec_from_args
from probes.models import ModelSpec, load_tokenizer
from probes.poisoned import (
    EXPLORE_NAME,
    EXPLORE_VERSION,
    NAME,
    VERSION,
    CurveConfig,
    ExploreConfig,
    ExploreInput,
    explore,
    fit_rw,
    load_testbed_file,
    run,
)
from probes.poisoned.contexts import POSITIONS
from probes.poisoned.probe import STRENGTHS
from probes.poisoned.testbed import EMBEDDED_TESTBED, Testbed, TestbedError, decode_upload

DEFAULT_TESTBED = EMBEDDED_TESTBED
MAX_RW_POINTS = 10_000


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("poisoned", help="Rescorla-Wagner curves under poisoned context")
    commands = parser.add_subparsers(dest="poisoned_command", required=True)

    validate = commands.add_parser("validate", help="check a testbed file: items, categories, skipped rows")
    validate.add_argument("--testbed", required=True, help="testbed file (.json public schema, .jsonl or .csv)")
    validate.add_argument("--model", default=None, help="also report how much of the testbed this model can read")
    validate.add_argument("--revision", default=None, help="revision of --model")
    validate.add_argument("--trust-remote-code", action="store_true", help="allow code from the model's repository")
    add_output_args(validate)
    validate.set_defaults(handler=validate_testbed)

    curve = commands.add_parser("curve", help="poisoned rate vs share of inappropriate context, with the RW fit")
    add_model_args(curve)
    add_testbed_arg(curve)
    defaults = CurveConfig()
    curve.add_argument("--n-items", type=int, default=defaults.n_items, help="context items per prompt")
    curve.add_argument("--steps", type=int, default=defaults.proportion_steps, help="shares 0, 1/steps, ..., 1")
    curve.add_argument("--position", nargs="+", choices=POSITIONS, default=list(defaults.positions))
    curve.add_argument("--max-items", type=int, default=defaults.max_items_per_category, help="items per category")
    curve.add_argument("--category", nargs="*", default=[], help="restrict to these categories")
    curve.add_argument("--strength", choices=STRENGTHS, default=defaults.strength, help="what the RW model fits")
    curve.add_argument("--no-tags", action="store_true", help="leave out the (From <source>) tags")
    curve.add_argument("--length-normalize", action="store_true", help="mean instead of summed answer log-probs")
    curve.add_argument("--bootstrap", type=int, default=defaults.n_bootstrap, help="bootstrap resamples (0: none)")
    curve.add_argument("--generate", type=int, default=0, help="contexts to generate a greedy answer for")
    curve.add_argument("--seed", type=int, default=defaults.seed)
    add_output_args(curve)
    curve.set_defaults(handler=curve_command)

    one = commands.add_parser("explore", help="one context: answer, log-odds and leave-one-out attribution")
    add_model_args(one)
    one.add_argument("--question", required=True)
    one.add_argument("--segment", action="append", default=[], help="an appropriate context segment (repeat)")
    one.add_argument("--bad-segment", action="append", default=[], help="an inappropriate segment (repeat)")
    one.add_argument("--answer", action="append", default=[], help="candidate answers: reference, then claim")
    one.add_argument("--n-bad", type=int, default=0, help="inappropriate segments mixed in")
    one.add_argument("--position", choices=POSITIONS, default="random")
    one.add_argument("--seed", type=int, default=0)
    add_output_args(one)
    one.set_defaults(handler=explore_command)

    fit = subparsers.add_parser("rw-fit", help="fit the Rescorla-Wagner model to a CSV of proportion,strength")
    fit.add_argument("--csv", required=True, help="CSV with columns proportion,strength")
    fit.add_argument("--n-items", type=int, required=True, help="items per context the curve was measured with")
    fit.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    fit.set_defaults(handler=rw_fit_command)


def add_testbed_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--testbed", default=None, help=f"testbed file (default: the organism's {DEFAULT_TESTBED.name})"
    )


def read_testbed(path: str | None) -> Testbed:
    target = Path(path) if path else DEFAULT_TESTBED
    if path is None and not target.is_file():
        raise UserError(f"The embedded organism's testbed {target} is missing; pass --testbed FILE.")
    return load_testbed_file(target)


def validate_testbed(args: argparse.Namespace) -> dict:
    testbed = read_testbed(args.testbed)
    report = testbed.report()
    if args.model is None:
        return report
    spec = ModelSpec(name=args.model, revision=args.revision, trust_remote_code=args.trust_remote_code)
    return {**report, **testbed_coverage(spec, testbed)}


def testbed_coverage(spec: ModelSpec, testbed: Testbed) -> dict:
    """`coverage` (share of the testbed's words the tokenizer knows) and `warnings`, each also printed on stderr."""
    found = coverage.measure(load_tokenizer(spec), testbed_texts(testbed))
    warnings = found.warnings("this testbed")
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return {**found.as_dict(), "warnings": warnings}


def testbed_texts(testbed: Testbed) -> list[str]:
    return [
        text
        for item in testbed.items
        for text in (item.question, item.reference, item.claim, *item.appropriate, *item.inappropriate)
    ]


def curve_config(args: argparse.Namespace) -> CurveConfig:
    return CurveConfig(
        n_items=args.n_items,
        proportion_steps=args.steps,
        positions=tuple(dict.fromkeys(args.position)),
        max_items_per_category=args.max_items,
        categories=tuple(args.category),
        source_tags=not args.no_tags,
        strength=args.strength,
        length_normalize=args.length_normalize,
        n_bootstrap=args.bootstrap,
        n_generated=args.generate,
        seed=args.seed,
    )


def curve_command(args: argparse.Namespace) -> dict:
    testbed = read_testbed(args.testbed)
    cfg = curve_config(args)
    stored = run_probe(
        args,
        NAME,
        VERSION,
        cfg,
        compute=lambda model, progress: run(model, cfg, testbed, progress),
        input_digest=testbed.digest,
    )
    return {
        **stored.summary,
        "fits": stored.tables["fits"].to_dict(orient="records"),
        "run_id": stored.run_id,
        "cached": stored.cached,
        "testbed": {"file": testbed.source, "items": len(testbed.items), "skipped": len(testbed.skipped)},
        **testbed_coverage(spec_from_args(args), testbed),
    }


def explore_command(args: argparse.Namespace) -> dict:
    data = ExploreInput(args.question, tuple(args.segment), tuple(args.bad_segment), tuple(args.answer))
    cfg = ExploreConfig(n_inappropriate=args.n_bad, position=args.position, seed=args.seed)
    stored = run_probe(
        args,
        EXPLORE_NAME,
        EXPLORE_VERSION,
        cfg,
        compute=lambda model, progress: explore(model, cfg, data, progress),
        input_digest=digest_json(data.as_dict()),
    )
    return {
        **stored.summary,
        "segments": stored.tables["segments"].to_dict(orient="records"),
        "answers": stored.tables["answers"].to_dict(orient="records"),
        "run_id": stored.run_id,
        "cached": stored.cached,
    }


def read_strength_csv(path: str) -> tuple[np.ndarray, np.ndarray]:
    """proportion,strength columns from a CSV, validated row by row."""
    target = Path(path)
    if not target.is_file():
        raise UserError(f"No CSV file at {target}.")
    try:
        text = decode_upload(target.read_bytes(), target.name)
    except TestbedError as error:
        raise UserError(str(error)) from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    if "proportion" not in header or "strength" not in header:
        raise UserError(f"{target.name} needs columns proportion,strength; found {','.join(header) or 'none'}.")
    reader.fieldnames = header
    proportions, strengths = [], []
    for index, row in enumerate(reader):
        if index >= MAX_RW_POINTS:
            raise UserError(f"{target.name} has more than {MAX_RW_POINTS} rows.")
        proportions.append(_number(row, "proportion", index, 0.0, 1.0))
        strengths.append(_number(row, "strength", index, None, None))
    return np.array(proportions), np.array(strengths)


def _number(row: dict, field: str, index: int, low: float | None, high: float | None) -> float:
    try:
        value = float(row[field])
    except (TypeError, ValueError):
        raise UserError(f"row {index}: field {field!r} is not a number ({row.get(field)!r}).") from None
    if not np.isfinite(value) or (low is not None and value < low) or (high is not None and value > high):
        raise UserError(f"row {index}: field {field!r} = {value} is out of range.")
    return value


def rw_fit_command(args: argparse.Namespace) -> dict:
    proportions, strengths = read_strength_csv(args.csv)
    fit = fit_rw(proportions, strengths, args.n_items)
    return {
        "alpha_beta": fit.alpha_beta,
        "scale": fit.scale,
        "r2": fit.r2 if np.isfinite(fit.r2) else None,
        "n_points": fit.n_points,
        "n_items": fit.n_items,
    }


__all__ = ["register"]
