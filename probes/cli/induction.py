"""`python -m probes induction scan|train|sweep|attention`: induction heads from the command line (cached)."""

from __future__ import annotations

import argparse

from cache import StoredRun
from probes.cli import (
    UserError,
    add_executor_args,
    add_model_args,
    add_output_args,
    report_failures,
    run_probe,
    run_requests,
    spec_from_args,
)
from probes.induction import attention, emergence, scores, sweep
from probes.models import ModelSpec
from probes.wiring import Request, result_of


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("induction", help="induction heads: scan, train from scratch, checkpoint sweep")
    commands = parser.add_subparsers(dest="induction_command", required=True)

    scan = commands.add_parser("scan", help="per-head induction / previous / duplicate / copying scores")
    add_model_args(scan)
    add_scan_args(scan)
    add_output_args(scan)
    scan.set_defaults(handler=scan_command)

    train = commands.add_parser("train", help="train an attention-only model and record the phase change")
    train.add_argument("--task", choices=emergence.TASKS, default="repeat")
    for field, kind, help_text in TRAIN_OPTIONS:
        train.add_argument("--" + field.replace("_", "-"), type=kind, default=None, help=help_text)
    add_output_args(train)
    train.set_defaults(handler=train_command)

    sweeping = commands.add_parser("sweep", help="scan every checkpoint: best induction score and loss vs step")
    add_model_args(sweeping)
    sweeping.add_argument("--revisions", default=None,
                          help="comma-separated checkpoints (e.g. 0,1000,step2000,final); default: a catalog "
                               "model's 20-checkpoint subset (Pythia: step0 ... step143000), else a local folder's "
                               "saved revisions plus the final model")  # fmt: skip
    add_scan_args(sweeping)
    add_output_args(sweeping)
    add_executor_args(sweeping, "one task per checkpoint (checkpoints already stored are served, not recomputed)")
    sweeping.set_defaults(handler=sweep_command)

    text = commands.add_parser("attention", help="one head's attention pattern on your text")
    add_model_args(text)
    text.add_argument("--text", required=True)
    text.add_argument("--layer", type=int, required=True)
    text.add_argument("--head", type=int, required=True)
    text.add_argument("--no-bos", action="store_true", help="do not prepend the BOS token")
    add_output_args(text)
    text.set_defaults(handler=attention_command)


TRAIN_OPTIONS = [
    ("steps", int, "optimiser steps"), ("seed", int, "initialisation and data seed"), ("lr", float, "Adam lr"),
    ("batch_size", int, "sequences per step"), ("record_every", int, "steps between records"),
    ("n_layers", int, "attention layers"), ("n_heads", int, "heads per layer"),
    ("seq_len", int, "repeat: tokens per half"), ("vocab_size", int, "repeat: vocabulary"),
    ("n_classes", int, "bursty: K classes"), ("burstiness", int, "bursty: B copies per class (divides N)"),
    ("p_bursty", float, "bursty: p_B"), ("p_novel", float, "bursty: p_C"), ("zipf_alpha", float, "bursty: Zipf alpha"),
    ("n_pairs", int, "bursty: N pairs"), ("n_labels", int, "bursty: L labels"), ("noise", float, "bursty: eps"),
]  # fmt: skip


def add_scan_args(parser: argparse.ArgumentParser) -> None:
    defaults = scores.ScanConfig()
    parser.add_argument("--seq-len", type=int, default=defaults.seq_len, help="random tokens per half (T)")
    parser.add_argument("--n-seqs", type=int, default=defaults.n_seqs, help="sequences in the batch")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--no-bos", action="store_true", help="do not prepend the BOS token")
    parser.add_argument("--no-copying", action="store_true", help="skip the OV-circuit copying score")
    parser.add_argument("--top-k", type=int, default=defaults.top_k)


def scan_config(args: argparse.Namespace) -> scores.ScanConfig:
    if args.seq_len < 2 or args.n_seqs < 1:
        raise UserError("--seq-len must be at least 2 and --n-seqs at least 1.")
    return scores.ScanConfig(seq_len=args.seq_len, n_seqs=args.n_seqs, seed=args.seed, prepend_bos=not args.no_bos,
                             copying=not args.no_copying, top_k=args.top_k)  # fmt: skip


def scan_output(run) -> dict:
    summary = run.summary
    keys = ("induction", "previous_token", "duplicate_token", "copying", "top_heads", "best_induction", "icl_score",
            "first_half_loss", "second_half_loss", "seq_len", "bos_offset")  # fmt: skip
    return {**{key: summary[key] for key in keys}, "run_id": run.run_id, "cached": run.cached,
            "model": run.model_id, "revision": run.revision}  # fmt: skip


def scan_command(args: argparse.Namespace) -> dict:
    cfg = scan_config(args)
    return scan_output(run_probe(args, scores.NAME, cfg))


def train_config(args: argparse.Namespace) -> emergence.TrainConfig:
    overrides = {field: getattr(args, field) for field, _, _ in TRAIN_OPTIONS if getattr(args, field) is not None}
    if args.task == "bursty":
        return emergence.bursty_config(**overrides)
    return emergence.TrainConfig(task="repeat", **overrides)


def train_command(args: argparse.Namespace) -> dict:
    run = run_probe(args, emergence.NAME, train_config(args))
    summary = run.summary
    return {"task": summary["task"], "phase_change_step": summary["phase_change_step"],
            "phase_metric": summary["phase_metric"], "phase_threshold": summary["phase_threshold"],
            "final": summary["final"], "history": summary["history"], "run_id": run.run_id, "cached": run.cached,
            "train_seconds": summary["train_seconds"]}  # fmt: skip


def sweep_command(args: argparse.Namespace) -> dict:
    cfg = scan_config(args)
    base = spec_from_args(args)
    revisions = sweep.parse_revisions(args.revisions) if args.revisions else sweep.default_revisions(base.name)
    if not revisions:
        raise UserError("No checkpoints to sweep.")
    specs = [ModelSpec(base.name, revision, base.device, base.dtype, base.trust_remote_code) for revision in revisions]
    batch = run_requests(args, [Request(scores.NAME, cfg, spec) for spec in specs], "induction sweep")
    if not batch.runs:  # one error line (it names the first failure), not one line per failure before it
        raise UserError(f"No checkpoint could be scanned; {batch.failures[0].request}: {batch.failures[0].reason}")
    failures = report_failures(batch)
    points = [
        sweep.SweepPoint(revision, sweep.revision_step(revision), run.run_id, result_of(run))
        for revision, run in zip(revisions, batch.outcomes, strict=True)
        if isinstance(run, StoredRun)
    ]
    frame = sweep.sweep_frame(points, final=sweep.final_step(base.name))
    output = {"model": base.name, "checkpoints": frame.to_dict(orient="records")}
    return {**output, "failures": failures} if failures else output


def attention_command(args: argparse.Namespace) -> dict:
    cfg = attention.TextAttentionConfig(text=args.text, layer=args.layer, head=args.head, prepend_bos=not args.no_bos)
    run = run_probe(args, attention.NAME, cfg)
    frame = result_of(run).to_frame()
    return {**run.summary, "pattern": frame[["query", "key", "attention"]].values.tolist(), "run_id": run.run_id}
