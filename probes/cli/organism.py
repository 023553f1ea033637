"""`python -m probes organism eval|train`: measure or rebuild the embedded model organism."""

from __future__ import annotations

import argparse
from pathlib import Path

from probes.cli import UserError, tqdm_progress
from probes.models import EMBEDDED_MODEL_DIR, LOCAL_REVISIONS_DIR


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("organism", help="evaluate or retrain the embedded model organism")
    commands = parser.add_subparsers(dest="organism_command", required=True)

    evaluate = commands.add_parser("eval", help="fact recall, context following, induction score and loss")
    evaluate.add_argument("--model", default=str(EMBEDDED_MODEL_DIR), help="organism folder (default: committed)")
    evaluate.add_argument("--revision", default=None, help="a checkpoint under <model>/revisions, e.g. step-1000")
    evaluate.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    evaluate.set_defaults(handler=run_eval)

    train = commands.add_parser("train", help="regenerate the corpus and retrain the organism")
    train.add_argument("--quick", action="store_true", help="a tiny build that finishes in under a minute")
    train.add_argument("--out", default=None, help="output folder (default: models/organism; --quick: required)")
    train.add_argument("--seed", type=int, default=0, help="world, corpus and initialisation seed")
    train.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    train.set_defaults(handler=run_train)


def run_eval(args: argparse.Namespace) -> dict:
    from probes.organism.evaluate import evaluate_folder

    folder = Path(args.model)
    if args.revision:
        folder = folder / LOCAL_REVISIONS_DIR / args.revision
    if not (folder / "organism.json").is_file():
        raise UserError(f"{folder} is not an organism folder (no organism.json); train one with 'organism train'.")
    return {"model": str(folder), **evaluate_folder(folder)}


def run_train(args: argparse.Namespace) -> dict:
    from probes.organism.train import TrainConfig, quick_config, train

    if args.quick and args.out is None:
        raise UserError("--quick needs --out DIR, so the committed organism is not overwritten by a tiny one.")
    out = Path(args.out) if args.out else EMBEDDED_MODEL_DIR
    cfg = quick_config(args.seed) if args.quick else TrainConfig(seed=args.seed)
    progress, close = tqdm_progress("organism train")
    try:
        metrics = train(cfg, out, progress)
    finally:
        close()
    keep = (
        "fact_recall",
        "context_following",
        "induction_score_max",
        "loss",
        "train_loss_first",
        "train_loss_final",
        "steps",
        "train_wall_time_s",
        "model_safetensors_sha256",
    )
    return {"out": str(out), **{k: metrics[k] for k in keep}}
