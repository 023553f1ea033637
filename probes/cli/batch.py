"""`python -m probes batch PLAN`: run a grid of probes x models x revisions x configs from a TOML plan.

Runs already stored are served (look-ups only), so a second run of the same plan computes nothing and an
interrupted one resumes with the runs it had not finished. `--json` prints one object at the end:
`{"executor", "workers", "runs": [{"id", "probe", "model", "revision", "cached"}], "failures": [{"request",
"reason", "run_id"}], "computed", "served"}`; the exit code is 1 when some runs failed (the others are stored).
The plan format: probes/batch.py.
"""

from __future__ import annotations

import argparse

from probes.batch import PlanError, plan_probes, read_plan
from probes.cli import UserError, add_executor_args, add_output_args, report_failures, run_requests


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "batch",
        help="run a TOML plan of probes x models x revisions x configs (stored runs are served, not recomputed)",
        description="Run every request of a TOML plan ([[run]] probe = ..., models = [...], revisions = [...], "
        f"[run.config] ...). Probes a plan can run: {', '.join(plan_probes())}.",
    )
    parser.add_argument("plan", help="the plan file (TOML)")
    add_output_args(parser)
    add_executor_args(parser, "one task per run of the plan")
    parser.set_defaults(handler=batch_command)


def batch_command(args: argparse.Namespace) -> dict:
    try:
        requests = read_plan(args.plan)
    except PlanError as error:
        raise UserError(str(error)) from None
    batch = run_requests(args, requests, "batch")
    runs = [
        {"id": run.run_id, "probe": run.probe, "model": run.model_id, "revision": run.revision, "cached": run.cached}
        for run in batch.runs
    ]
    executor = "ray" if args.executor == "ray" or args.ray_address else "local"
    return {
        "executor": executor,
        "workers": args.workers if executor == "ray" else 1,
        "runs": runs,
        "failures": report_failures(batch),
        "computed": batch.computed,
        "served": sum(run["cached"] for run in runs),
    }
