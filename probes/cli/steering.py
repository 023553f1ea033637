"""`python -m probes steering vectors|sweep`: FlexAC associative steering, headless.

`sweep --json` prints {"rows": [{"strength", "faithfulness", "creativity", ...}], "random_baseline": [...],
"layers": [...], "creativity_metric": ..., "collapse": {...}, "coverage": 0-1, "warnings": [...],
"strength_unit": {...}, ...}; all metrics lie in [0, 1]. Faithfulness is teacher-forced exact-match accuracy on
the evaluation facts; creativity is the share of associative-vocabulary words in greedy continuations of the fact
prompts (novelty vs the prompt when no vocabulary is known). Strength unit (default "centroid"): +2 carries the
faithful prompts' output residual one centroid distance toward the associative set (probes/steering/vectors.py).
Coverage is the share of the prompt sets' words the tokenizer knows; below 0.8 the warning also goes to stderr.
Runs use the same cache keys as the dashboard, so a sweep computed here shows up there instantly.
Without prompt files both commands use the built-in sets (the organism's for an organism-like model, the English
defaults in probes/data/english/ for every other); `prompt_sets` in the JSON says which: "organism", "english" or
"user".
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from cache import StoredRun
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
)
from probes.induction.sweep import parse_revisions
from probes.models import ModelSpec, layer_count
from probes.steering import (
    NAME,
    VECTORS_NAME,
    PromptSets,
    SteeringVectors,
    SweepConfig,
    VectorConfig,
    parse_facts,
    parse_prompt_sets,
)
from probes.steering.prompts import ORGANISM_ASSOCIATIVE_SETS, default_prompt_sets, default_sets_kind, parse_lines
from probes.steering.vectors import STRENGTH_UNITS
from probes.wiring import Request, SweepInputs, result_of


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("steering", help="FlexAC associative steering: build vectors, sweep strengths")
    commands = parser.add_subparsers(dest="steering_command", required=True)

    vectors = commands.add_parser("vectors", help="build the steering vector and write it as safetensors + JSON")
    _add_input_args(vectors)
    vectors.add_argument("--out", default=None, help="folder to write vector.safetensors and vector.json into")
    add_output_args(vectors)
    vectors.set_defaults(handler=vectors_command)

    sweep = commands.add_parser("sweep", help="faithfulness and creativity vs strength, with a random baseline")
    _add_input_args(sweep)
    sweep.add_argument("--vector", default=None, help="a saved vector.safetensors (its .json sidecar is optional)")
    sweep.add_argument(
        "--strengths",
        default=",".join(f"{s:g}" for s in SweepConfig.strengths),
        help="comma-separated strengths (negative = faithful)",
    )
    sweep.add_argument("--task-strength", type=float, default=0.0, help="strength of the task-specific vector")
    sweep.add_argument("--n-facts", type=int, default=SweepConfig.n_facts, help="evaluation facts")
    sweep.add_argument("--max-new-tokens", type=int, default=SweepConfig.max_new_tokens)
    sweep.add_argument(
        "--positions",
        type=int,
        default=SweepConfig.n_prompt_positions,
        help="steer this many last prompt tokens (and every generated token)",
    )
    sweep.add_argument("--no-random-baseline", action="store_true", help="skip the matched-norm random vector")
    sweep.add_argument(
        "--revisions",
        default=None,
        help="comma-separated checkpoints to sweep, each with its own vector (e.g. step-250,step-750,final); "
        "prints {sweeps: [...]} with one object per revision",
    )
    add_output_args(sweep)
    add_executor_args(
        sweep,
        "one task per model revision (a sweep's strengths share its strength-0 reference and random baseline, so "
        "they are one run, not one task each)",
    )
    sweep.set_defaults(handler=sweep_command)


def _add_input_args(parser: argparse.ArgumentParser) -> None:
    add_model_args(parser)
    parser.add_argument(
        "--prompts",
        default=None,
        help="JSON or JSONL with 'faithful'/'associative' fields (default: the built-in sets, the organism's "
        "for an organism-like model and the English defaults for every other)",
    )
    parser.add_argument(
        "--associative-set",
        default="dream",
        choices=list(ORGANISM_ASSOCIATIVE_SETS),
        help="with the built-in sets: which prompts form the associative side",
    )
    parser.add_argument("--faithful", default=None, help="text file, one faithful prompt per line")
    parser.add_argument("--associative", default=None, help="text file, one associative prompt per line")
    parser.add_argument("--facts", default=None, help="CSV/JSONL of prompt,answer pairs for faithfulness")
    parser.add_argument("--targets", default=None, help="text file of task samples for a task-specific vector")
    parser.add_argument("--layers", default=None, help="comma-separated steering layers (default: middle three)")
    parser.add_argument(
        "--n-pairs", type=int, default=VectorConfig.top_n_pairs, help="top-N pairs (FlexAC: 50); 0 = all pairs"
    )
    parser.add_argument(
        "--unit",
        default=VectorConfig.unit,
        choices=list(STRENGTH_UNITS),
        help="strength unit: centroid (+2 carries faithful outputs to the associative centroid), residual "
        "(x mean residual norm, see --relative-norm) or raw (FlexAC's mean difference)",
    )
    parser.add_argument(
        "--relative-norm",
        type=float,
        default=VectorConfig.relative_norm,
        help="with --unit residual: each layer's vector is this x the mean residual norm",
    )
    parser.add_argument(
        "--pairing",
        default=VectorConfig.pairing,
        choices=["crosswise", "matched"],
        help="crosswise: every faithful x every associative prompt (FlexAC); matched: i-th with i-th only",
    )
    parser.add_argument("--seed", type=int, default=0)
    add_chat_template_arg(parser)


def _read(path: str) -> str:
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(f"No such file: {path}")
    return file.read_text()


def _numbers(text: str | None, kind: type) -> tuple | None:
    if text is None or not text.strip():
        return None
    try:
        return tuple(kind(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UserError(f"Expected comma-separated numbers, got {text!r}.") from None


def prompt_sets_from_args(args: argparse.Namespace) -> PromptSets:
    if args.prompts:
        sets = parse_prompt_sets(_read(args.prompts), source=args.prompts)
    elif args.faithful or args.associative:
        if not (args.faithful and args.associative):
            raise UserError("Give both --faithful and --associative (or one --prompts file).")
        sets = PromptSets(parse_lines(_read(args.faithful)), parse_lines(_read(args.associative)), source="files")
        sets.validate()
    else:
        sets = default_prompt_sets(spec_from_args(args), args.associative_set)
    if args.facts:
        sets = sets.with_facts(parse_facts(_read(args.facts)))
    if args.targets:
        sets = sets.with_target_samples(parse_lines(_read(args.targets)))
    return sets


def prompt_sets_kind(args: argparse.Namespace) -> str:
    """Where the prompt sets came from: "organism" or "english" (the built-in sets), or "user" (files)."""
    if args.prompts or args.faithful or args.associative:
        return "user"
    return default_sets_kind(spec_from_args(args))


def vector_config_from_args(args: argparse.Namespace, resolve: bool = True) -> VectorConfig:
    """The request's config with defaults resolved for the model, so it keys the same run as the page."""
    cfg = VectorConfig(
        layers=_numbers(args.layers, int),
        top_n_pairs=args.n_pairs,
        pairing=args.pairing,
        unit=args.unit,
        relative_norm=args.relative_norm,
        seed=args.seed,
        chat_template=args.chat_template,
    )
    return cfg.resolved(layer_count(spec_from_args(args))) if resolve else cfg


def obtain_vectors(args: argparse.Namespace, sets: PromptSets) -> tuple[SteeringVectors, str | None]:
    """The saved vector named by --vector, or the cached/built vector for these prompt sets -> (vectors, run id)."""
    if getattr(args, "vector", None):
        path = Path(args.vector).expanduser()
        sidecar = path.with_suffix(".json")
        json_bytes = sidecar.read_bytes() if sidecar.is_file() else None
        if not path.is_file():
            raise UserError(f"No such file: {args.vector}")
        return SteeringVectors.from_files(path.read_bytes(), json_bytes), None
    cfg = vector_config_from_args(args)
    run = run_probe(args, VECTORS_NAME, cfg, sets)
    return result_of(run).vectors, run.run_id


def vectors_command(args: argparse.Namespace) -> dict:
    sets = prompt_sets_from_args(args)
    vectors, run_id = obtain_vectors(args, sets)
    written = []
    if args.out:
        folder = Path(args.out).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        for name, content in vectors.files().items():
            (folder / name).write_bytes(content)
            written.append(str(folder / name))
    return {
        "run_id": run_id,
        "layers": list(vectors.layers),
        "metadata": vectors.metadata_dict(),
        "files": written,
        "prompt_sets": prompt_sets_kind(args),
    }


def sweep_config_from_args(args: argparse.Namespace) -> SweepConfig:
    strengths = _numbers(args.strengths, float)
    if not strengths:
        raise UserError("Give at least one strength, e.g. --strengths=-2,-1,0,1,2")
    return SweepConfig(
        strengths=strengths,
        layers=_numbers(args.layers, int),
        n_prompt_positions=args.positions,
        task_strength=args.task_strength,
        n_facts=args.n_facts,
        max_new_tokens=args.max_new_tokens,
        random_baseline=not args.no_random_baseline,
        seed=args.seed,
        chat_template=args.chat_template,
    )


def sweep_command(args: argparse.Namespace) -> dict:
    """One sweep per model revision (`--revisions`; default the one --revision): the vector of each revision is
    built (or served) first, then the sweeps; both stages run on the executor the arguments name, one task per
    revision (a sweep's strengths share its strength-0 reference and random baseline, so they stay one run)."""
    sets = prompt_sets_from_args(args)
    requested = sweep_config_from_args(args)
    base = spec_from_args(args)
    revisions = parse_revisions(args.revisions) if args.revisions else [base.revision]
    specs = [replace(base, revision=revision) for revision in dict.fromkeys(revisions)]
    batches = []  # their failures are reported once the command is known to produce something
    if getattr(args, "vector", None):
        saved = obtain_vectors(args, sets)
        vectors = {spec: saved for spec in specs}
    else:
        vector_requests = [Request(VECTORS_NAME, vector_config(args, spec), spec, sets) for spec in specs]
        built = run_requests(args, vector_requests, VECTORS_NAME)
        batches.append(built)
        vectors = {
            spec: (result_of(run).vectors, run.run_id)
            for spec, run in zip(specs, built.outcomes, strict=True)
            if isinstance(run, StoredRun)
        }
    ready = [spec for spec in specs if spec in vectors]
    sweep_requests = [
        Request(NAME, requested.resolved(vectors[spec][0].layers), spec, SweepInputs(vectors[spec][0], sets))
        for spec in ready
    ]
    swept = run_requests(args, sweep_requests, NAME) if sweep_requests else None
    batches += [swept] if swept else []
    failed = [failure for batch in batches for failure in batch.failures]
    outputs = []
    for spec, run in zip(ready, swept.outcomes if swept else [], strict=True):
        if not isinstance(run, StoredRun):
            continue
        for warning in run.summary.get("warnings", []):
            print(f"warning: {warning}", file=sys.stderr)
        described = {"run_id": run.run_id, "vector_run_id": vectors[spec][1], "cached": run.cached}
        where = {"prompt_sets": prompt_sets_kind(args), "model": spec.name, "revision": spec.revision}
        outputs.append({**run.summary, **described, **where})
    if not outputs:
        raise UserError(f"No sweep could be computed; {failed[0].request}: {failed[0].reason}")
    failures = [entry for batch in batches for entry in report_failures(batch)]
    if len(specs) == 1 and not failures:
        return {key: value for key, value in outputs[0].items() if key not in ("model", "revision")}
    return {"sweeps": outputs, "failures": failures} if failures else {"sweeps": outputs}


def vector_config(args: argparse.Namespace, spec: ModelSpec) -> VectorConfig:
    """`vector_config_from_args` for one revision of the model (its layer count may differ)."""
    return vector_config_from_args(args, resolve=False).resolved(layer_count(spec))
