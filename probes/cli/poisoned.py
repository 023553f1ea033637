"""`python -m probes poisoned validate|curve|explore` and `python -m probes rw-fit`: poisoned-context curves.

Steered curves: `poisoned curve --steer VECTOR_RUN_ID --strength S [--strength S2 ...]` scores the testbed with a
stored `steering.vectors` run applied (its id in full or a prefix of at least 8 characters), one stored run per
strength. `--strength` keeps its first meaning too: a name (poisoned_rate, choice_probability) says what the RW
model fits, a number is a steering strength (only with --steer). One strength: the usual JSON plus
`steer: {vector_run_id, strength, ...}`; several: `{"steer": {vector_run_id, strengths}, "curves": [one such
object per strength], "testbed": ...}`.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from pathlib import Path

import numpy as np

from probes import wiring
from probes.cli import (
    UserError,
    add_chat_template_arg,
    add_executor_args,
    add_model_args,
    add_output_args,
    report_failures,
    run_probe,
    run_requests,
    spec_from_args,
    store_from_args,
    tqdm_progress,
)
from probes.coverage import measure
from probes.models import load_tokenizer
from probes.poisoned import (
    EXPLORE_NAME,
    NAME,
    CurveConfig,
    ExploreConfig,
    ExploreInput,
    load_testbed_file,
)
from probes.poisoned.contexts import POSITIONS
from probes.poisoned.mitigate import METHODS, MitigateConfig, before_after
from probes.poisoned.probe import STRENGTHS, Steer, SteeredTestbed, item_texts
from probes.poisoned.rescorla_wagner import fit_curves
from probes.poisoned.scoring import SCORINGS
from probes.poisoned.testbed import (
    EMBEDDED_TESTBED,
    ENGLISH_TESTBED,
    Testbed,
    TestbedError,
    decode_upload,
    default_testbed_path,
)
from probes.steering import VECTORS_NAME, SteeringVectors
from probes.wiring import Request, result_of

DEFAULT_TESTBED = EMBEDDED_TESTBED  # the organism's (the default model's) built-in testbed
MAX_RW_POINTS = 10_000
MIN_RW_POINTS = 3
PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
NON_FINITE = {"nan", "inf", "infinity"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("poisoned", help="Rescorla-Wagner curves under poisoned context")
    commands = parser.add_subparsers(dest="poisoned_command", required=True)

    validate = commands.add_parser("validate", help="check a testbed file: items, categories, skipped rows")
    validate.add_argument("--testbed", required=True, help="testbed file (.json public schema, .jsonl or .csv)")
    add_model_args(validate)
    validate.set_defaults(model=None)  # coverage only when a model is named
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
    curve.add_argument(
        "--strength",
        action="append",
        default=[],
        metavar="MEASURE|S",
        help=f"what the RW model fits ({', '.join(STRENGTHS)}; default {defaults.strength}); with --steer, a number "
        "is a steering strength (repeat for several curves, e.g. --strength=-2 --strength 0 --strength 2)",
    )
    curve.add_argument(
        "--steer",
        default=None,
        metavar="VECTOR_RUN_ID",
        help="score with this stored steering-vector run applied (full id or a prefix of at least 8 characters)",
    )
    curve.add_argument("--no-tags", action="store_true", help="leave out the (From <source>) tags")
    add_scoring_arg(curve, defaults.scoring)
    add_chat_template_arg(curve)
    curve.add_argument(
        "--length-normalize", action="store_const", const="mean", dest="scoring", help="same as --scoring mean"
    )
    curve.add_argument("--bootstrap", type=int, default=defaults.n_bootstrap, help="bootstrap resamples (0: none)")
    curve.add_argument("--generate", type=int, default=0, help="contexts to generate a greedy answer for")
    curve.add_argument("--seed", type=int, default=defaults.seed)
    add_output_args(curve)
    add_executor_args(
        curve,
        "one task per steering strength (--steer with several --strength values), and on Ray one task per "
        "--shard-items testbed items of each curve, merged by this process into one run (one bootstrap, one RW fit)",
    )
    curve.set_defaults(handler=curve_command)

    mitigate = commands.add_parser(
        "mitigate",
        help="RW-Steering: fine-tune the model to judge its context first, then answer; held-out curves before/after",
    )
    add_model_args(mitigate)
    add_testbed_arg(mitigate)
    add_mitigate_args(mitigate)
    add_output_args(mitigate)
    mitigate.set_defaults(handler=mitigate_command)

    one = commands.add_parser("explore", help="one context: answer, log-odds and leave-one-out attribution")
    add_model_args(one)
    one.add_argument("--question", required=True)
    one.add_argument("--segment", action="append", default=[], help="an appropriate context segment (repeat)")
    one.add_argument("--bad-segment", action="append", default=[], help="an inappropriate segment (repeat)")
    one.add_argument("--answer", action="append", default=[], help="candidate answers: reference, then claim")
    one.add_argument("--n-bad", type=int, default=0, help="inappropriate segments mixed in")
    one.add_argument("--position", choices=POSITIONS, default="random")
    add_scoring_arg(one, ExploreConfig.scoring)
    add_chat_template_arg(one)
    one.add_argument("--seed", type=int, default=0)
    add_output_args(one)
    one.set_defaults(handler=explore_command)

    fit = subparsers.add_parser(
        "rw-fit",
        help="fit the Rescorla-Wagner model (with baseline) and the constant, proportional and logistic models to a "
        "CSV of proportion,strength; the best model by AICc (AIC corrected for few points)",
    )
    fit.add_argument("--csv", required=True, help="CSV with columns proportion (0-1),strength (bounded fit if all 0-1)")
    fit.add_argument("--n-items", type=int, required=True, help="items per context the curve was measured with")
    fit.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    fit.set_defaults(handler=rw_fit_command)


MITIGATE_SCORING = "sum"  # why not calibrated: probes/poisoned/mitigate.py's docstring


def add_mitigate_args(parser: argparse.ArgumentParser) -> None:
    """The fine-tuning's settings and the held-out curves' settings."""
    tuning, curve = MitigateConfig(), CurveConfig()
    parser.add_argument("--method", choices=METHODS, default=tuning.method, help="full fine-tuning, LoRA, or auto")
    parser.add_argument("--held-out", type=float, default=tuning.held_out_share, help="share of questions held out")
    parser.add_argument("--split-seed", type=int, default=tuning.split_seed)
    parser.add_argument("--n-items", type=int, default=tuning.n_items, help="context items per prompt")
    parser.add_argument("--stage1-steps", type=int, default=tuning.stage1_steps)
    parser.add_argument("--stage2-steps", type=int, default=tuning.stage2_steps)
    parser.add_argument("--batch-size", type=int, default=tuning.batch_size)
    parser.add_argument("--learning-rate", type=float, default=tuning.learning_rate)
    parser.add_argument("--lora-rank", type=int, default=tuning.lora_rank)
    parser.add_argument("--steps", type=int, default=curve.proportion_steps, help="curve shares 0, 1/steps, ..., 1")
    parser.add_argument("--position", nargs="+", choices=POSITIONS, default=list(curve.positions))
    add_scoring_arg(parser, MITIGATE_SCORING)
    add_chat_template_arg(parser)
    parser.add_argument("--bootstrap", type=int, default=curve.n_bootstrap, help="bootstrap resamples (0: none)")
    parser.add_argument("--seed", type=int, default=tuning.seed)


def add_scoring_arg(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--scoring",
        choices=SCORINGS,
        default=default,
        help="answer score: sum or per-token mean of its log-probs, or calibrated (minus its log-prob after the "
        "content-free prompt 'N/A')",
    )


def print_warnings(result: dict) -> None:
    for warning in result.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)


def add_testbed_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--testbed",
        default=None,
        help=f"testbed file (default: the model's built-in testbed: the organism's {DEFAULT_TESTBED.name} for the "
        f"organism, the English {ENGLISH_TESTBED.parent.name}/{ENGLISH_TESTBED.name} for every other model)",
    )


def testbed_path(args: argparse.Namespace) -> Path:
    """--testbed when given, else the built-in testbed that fits --model."""
    return Path(args.testbed) if args.testbed else default_testbed_path(spec_from_args(args))


def read_testbed(path: str | Path | None) -> Testbed:
    target = Path(path) if path else DEFAULT_TESTBED
    if (path is None or target in (EMBEDDED_TESTBED, ENGLISH_TESTBED)) and not target.is_file():
        owner = "embedded organism's" if target == EMBEDDED_TESTBED else "built-in English"
        raise UserError(f"The {owner} testbed {target} is missing; pass --testbed FILE.")
    return load_testbed_file(target)


def validate_testbed(args: argparse.Namespace) -> dict:
    """The testbed's report; with --model also the share of its words that model's tokenizer can read."""
    testbed = read_testbed(args.testbed)
    report = testbed.report()
    if args.model is None:
        return report
    coverage = measure(load_tokenizer(spec_from_args(args)), item_texts(list(testbed.items)))
    report.update({**coverage.as_dict(), "model": args.model, "warnings": coverage.warnings("this testbed")})
    print_warnings(report)
    return report


MIN_RUN_PREFIX = 8


def split_strengths(values: list[str]) -> tuple[str, list[float]]:
    """--strength values -> (what the RW model fits, steering strengths in the order given, without repeats)."""
    measures, numbers = [], []
    for value in values:
        if value in STRENGTHS:
            measures.append(value)
            continue
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not PLAIN_NUMBER.fullmatch(value.strip()) or not np.isfinite(number):
            raise UserError(
                f"--strength takes {' or '.join(STRENGTHS)} (what the RW model fits) or, with --steer, a finite "
                f"steering strength; got {value!r}."
            )
        numbers.append(number + 0.0)  # -0.0 -> 0.0
    if len(set(measures)) > 1:
        raise UserError(f"--strength names two measures for the RW fit ({', '.join(dict.fromkeys(measures))}).")
    return (measures[0] if measures else CurveConfig.strength), list(dict.fromkeys(numbers))


def stored_vectors(args: argparse.Namespace) -> tuple[SteeringVectors, str]:
    """The `steering.vectors` run named by --steer (full id or a unique prefix of >= 8 characters) -> (vectors, id)."""
    prefix = args.steer.strip().lower()
    if len(prefix) < MIN_RUN_PREFIX:
        raise UserError(
            f"--steer takes a steering-vector run id, in full or its first {MIN_RUN_PREFIX} or more characters "
            f"(the run history shows 12); got {args.steer!r}."
        )
    store = store_from_args(args)
    ids = [run_id for run_id in store.list_runs()["run_id"] if run_id.startswith(prefix)]
    if len(ids) != 1:
        raise UserError(
            f"No stored run matches {args.steer!r}; list the vectors with: python -m probes cache list --probe "
            f"{VECTORS_NAME}."
            if not ids
            else f"{args.steer!r} matches {len(ids)} runs; give more characters of the run id."
        )
    run = store.load(ids[0])
    if run.probe != VECTORS_NAME:
        raise UserError(f"Run {run.run_id[:12]} is a {run.probe} run, not a steering vector ({VECTORS_NAME}).")
    return result_of(run).vectors, run.run_id


def curve_config(args: argparse.Namespace, measure: str | None = None) -> CurveConfig:
    return CurveConfig(
        n_items=args.n_items,
        proportion_steps=args.steps,
        positions=tuple(dict.fromkeys(args.position)),
        max_items_per_category=args.max_items,
        categories=tuple(args.category),
        source_tags=not args.no_tags,
        strength=measure or split_strengths(args.strength)[0],
        scoring=args.scoring,
        chat_template=args.chat_template,
        n_bootstrap=args.bootstrap,
        n_generated=args.generate,
        seed=args.seed,
    )


def curve_command(args: argparse.Namespace) -> dict:
    measure, steer_strengths = split_strengths(args.strength)
    if steer_strengths and not args.steer:
        raise UserError("A numeric --strength is a steering strength; name the vector with --steer VECTOR_RUN_ID.")
    if args.steer and not steer_strengths:
        raise UserError("--steer needs at least one steering strength, e.g. --strength 2 (negative: faithful).")
    vectors, vector_run_id = stored_vectors(args) if args.steer else (None, None)
    path = testbed_path(args)
    testbed = read_testbed(path)
    cfg = curve_config(args, measure)
    described = {
        "file": testbed.source,
        "path": str(path),
        "items": len(testbed.items),
        "skipped": len(testbed.skipped),
    }
    spec = spec_from_args(args)
    if vectors is None:
        return {**curve_output(one_run(run_requests(args, [Request(NAME, cfg, spec, testbed)], NAME))),
                "testbed": described}  # fmt: skip
    inputs = [SteeredTestbed(testbed, Steer(vectors, strength)) for strength in steer_strengths]
    batch = run_requests(args, [Request(NAME, cfg, spec, steered) for steered in inputs], NAME)
    if not batch.runs:  # one error line (it names the first failure), not one line per failure before it
        raise UserError(f"No curve could be computed; {batch.failures[0].reason}")
    failures = report_failures(batch)
    curves = []
    for stored in batch.runs:
        output = curve_output(stored)
        output["steer"] = {"vector_run_id": vector_run_id, **output["steer"]}
        curves.append(output)
    if len(curves) == 1 and not failures:
        return {**curves[0], "testbed": described}
    done = [curve["steer"]["strength"] for curve in curves]
    output = {"steer": {"vector_run_id": vector_run_id, "strengths": done}, "curves": curves, "testbed": described}
    return {**output, "failures": failures} if failures else output


def one_run(batch):
    """The only run of a one-request batch; its failure as the command's error."""
    if batch.failures:
        raise UserError(batch.failures[0].reason)
    return batch.runs[0]


def curve_output(stored) -> dict:
    """One stored curve run as the JSON prints it (its warnings also go to stderr)."""
    print_warnings(stored.summary)
    return {
        **stored.summary,
        "fits": result_of(stored).fits.to_dict(orient="records"),
        "run_id": stored.run_id,
        "cached": stored.cached,
    }


def mitigate_configs(args: argparse.Namespace) -> tuple[MitigateConfig, CurveConfig]:
    tuning = MitigateConfig(
        held_out_share=args.held_out,
        split_seed=args.split_seed,
        n_items=args.n_items,
        stage1_steps=args.stage1_steps,
        stage2_steps=args.stage2_steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        method=args.method,
        lora_rank=args.lora_rank,
        chat_template=args.chat_template,
        seed=args.seed,
    )
    curve = CurveConfig(
        n_items=args.n_items,
        proportion_steps=args.steps,
        positions=tuple(dict.fromkeys(args.position)),
        scoring=args.scoring,
        chat_template=args.chat_template,
        n_bootstrap=args.bootstrap,
        seed=args.seed,
    )
    return tuning, curve


def mitigate_command(args: argparse.Namespace) -> dict:
    """Held-out curves before and after RW-Steering fine-tuning, the headline changes, and the tuned revision."""
    tuning, curve = mitigate_configs(args)
    testbed = read_testbed(testbed_path(args))
    progress, close = tqdm_progress("poisoned mitigate")
    try:
        plan = wiring.plan_mitigation(spec_from_args(args), testbed, tuning, curve)
        done = wiring.mitigate(store_from_args(args), plan, progress=progress, refresh=args.no_cache)
    except ValueError as error:
        raise UserError(str(error)) from None
    finally:
        close()
    before, after = curve_output(done.before), curve_output(done.after)
    return {
        **before_after(before["points"], after["points"]),
        "rw_fit_before": before["rw_fit"],
        "rw_fit_after": after["rw_fit"],
        "best_model_after": after["rw_fit"]["best_model"],
        "model": done.tuned.name,
        "revision": done.tuned.revision,
        "tuning": {**done.tuning.summary, "run_id": done.tuning.run_id, "cached": done.tuning.cached},
        "before": before,
        "after": after,
    }


def explore_command(args: argparse.Namespace) -> dict:
    data = ExploreInput(args.question, tuple(args.segment), tuple(args.bad_segment), tuple(args.answer))
    cfg = ExploreConfig(
        n_inappropriate=args.n_bad,
        position=args.position,
        scoring=args.scoring,
        chat_template=args.chat_template,
        seed=args.seed,
    )
    stored = run_probe(args, EXPLORE_NAME, cfg, data)
    print_warnings(stored.summary)
    result = result_of(stored)
    return {
        **stored.summary,
        "segments": result.segments.to_dict(orient="records"),
        "answers": result.answers.to_dict(orient="records"),
        "run_id": stored.run_id,
        "cached": stored.cached,
    }


def read_strength_csv(path: str) -> tuple[np.ndarray, np.ndarray]:
    """proportion,strength columns from a CSV, validated row by row: (P,) shares in [0, 1] and (P,) finite strengths,
    at least MIN_RW_POINTS rows."""
    target = Path(path)
    if not target.is_file():
        raise UserError(f"No CSV file at {target}.")
    try:
        text = decode_upload(target.read_bytes(), target.name)
    except TestbedError as error:
        raise UserError(str(error)) from None
    if not text.strip():
        raise UserError(f"{target.name} is empty; it needs a header proportion,strength and at least 3 rows.")
    reader = csv.DictReader(io.StringIO(text))
    header = [(h or "").strip().lower() for h in reader.fieldnames or []]
    if "proportion" not in header or "strength" not in header:
        raise UserError(f"{target.name} needs columns proportion,strength; found {','.join(header) or 'none'}.")
    reader.fieldnames = header
    proportions, strengths = [], []
    for index, row in enumerate(reader):
        if index >= MAX_RW_POINTS:
            raise UserError(f"{target.name} has more than {MAX_RW_POINTS} rows.")
        proportions.append(_number(row, "proportion", index, 0.0, 1.0))
        strengths.append(_number(row, "strength", index, None, None))
    if len(proportions) < MIN_RW_POINTS:
        raise UserError(
            f"{target.name} has {len(proportions)} data rows; the RW fit needs at least {MIN_RW_POINTS} proportions."
        )
    return np.array(proportions), np.array(strengths)


def _number(row: dict, field: str, index: int, low: float | None, high: float | None) -> float:
    """A plain decimal number (no nan, inf or digit separators, which `float` would accept) within [low, high]."""
    cell = row.get(field)
    text = cell.strip() if isinstance(cell, str) else ""
    if text.lower().lstrip("+-") in NON_FINITE:
        raise UserError(f"row {index}: field {field!r} is not a finite number ({cell!r}).")
    if not PLAIN_NUMBER.fullmatch(text):
        raise UserError(f"row {index}: field {field!r} is not a number ({cell!r}).")
    value = float(text)
    if not np.isfinite(value):
        raise UserError(f"row {index}: field {field!r} is not a finite number ({cell!r}).")
    if (low is not None and value < low) or (high is not None and value > high):
        raise UserError(f"row {index}: field {field!r} = {value} is out of range [{low}, {high}].")
    return value


def rw_fit_command(args: argparse.Namespace) -> dict:
    """The RW fit (with baseline) and its competitors; b and c are bounded to [0, 1] when every strength is a rate."""
    if args.n_items < 1:
        raise UserError(f"--n-items must be at least 1 (got {args.n_items}).")
    proportions, strengths = read_strength_csv(args.csv)
    bounded = bool(np.all((strengths >= 0.0) & (strengths <= 1.0)))
    fits = fit_curves(proportions, strengths, args.n_items, bounded=bounded)
    return {
        **fits.as_dict(),
        "n_points": fits.rw.n_points,
        "n_items": fits.rw.n_items,
        "bounded": bounded,
        "meaning": fits.meaning,
    }


__all__ = ["register"]
