"""`python -m probes cache list|export|bundle|reproduce|delete`: manage stored runs (bundles: probes/cli/bundle.py)."""

from __future__ import annotations

import argparse

from probes.cli import UserError, add_output_args, store_from_args
from probes.cli.bundle import add_bundle_commands


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("cache", help="list, export, bundle, reproduce or delete stored runs")
    commands = parser.add_subparsers(dest="cache_command", required=True)

    listing = commands.add_parser("list", help="stored runs, newest first")
    listing.add_argument("--probe", default=None)
    listing.add_argument("--model", default=None)
    add_output_args(listing)
    listing.set_defaults(handler=list_runs)

    export = commands.add_parser("export", help="write a run's tables and provenance to a folder")
    export.add_argument("run_id")
    export.add_argument("--format", choices=["csv", "parquet"], default="csv")
    export.add_argument("--out", required=True, help="folder to write <table>.<format> and run.json into")
    add_output_args(export)
    export.set_defaults(handler=export_run)

    delete = commands.add_parser("delete", help="remove a run")
    delete.add_argument("run_id")
    add_output_args(delete)
    delete.set_defaults(handler=delete_run)

    add_bundle_commands(commands, add_output_args)  # bundle, reproduce (probes/cli/bundle.py)


def list_runs(args: argparse.Namespace) -> dict:
    frame = store_from_args(args).list_runs(probe=args.probe, model_id=args.model)
    frame["created_at"] = frame["created_at"].astype(str)
    return {"runs": frame.drop(columns=["config_json"]).to_dict(orient="records")}


def export_run(args: argparse.Namespace) -> dict:
    store = store_from_args(args)
    run_id = _resolve_run_id(store, args.run_id)
    written = store.export(run_id, args.format, args.out)
    return {"run_id": run_id, "files": [str(path) for path in written]}


def delete_run(args: argparse.Namespace) -> dict:
    store = store_from_args(args)
    run_id = _resolve_run_id(store, args.run_id)
    store.delete(run_id)
    return {"deleted": run_id}


def _resolve_run_id(store, prefix: str) -> str:
    """Accept a unique prefix of a run id, as git does for commits."""
    ids = [run_id for run_id in store.list_runs()["run_id"] if run_id.startswith(prefix)]
    if len(ids) != 1:
        raise UserError(f"No run matches {prefix!r}." if not ids else f"{prefix!r} matches {len(ids)} runs.")
    return ids[0]
