"""The command-line entry: runs probes through the wiring layer (`probes/wiring.py`), as the pages do.

Each module in this package exposes `register(subparsers)`, adding its commands; a command's handler takes the
parsed arguments and returns a JSON-able dict (printed as exactly one JSON object with `--json`, as readable text
otherwise). Errors a user can cause raise `UserError` (or `ModelLoadError`/`StoreError`) and end the process with
exit code 2 and one line on stderr. Progress goes to stderr through tqdm. Commands that fan out into several runs
(`add_executor_args`, `run_requests`) run them locally or on Ray; when some of them fail, the result lists them
under `failures` (one stderr line each) and the exit code is 1.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import pkgutil
import sys
from collections.abc import Callable, Iterator

from cache import ResultStore, StoredRun, StoreError
from probes import wiring
from probes.executors import SHARD_ITEMS, BatchResult, ExecutorError, make_executor
from probes.models import EMBEDDED_MODEL_NAME, ModelLoadError, ModelSpec
from probes.tokens import CHAT_MODES
from probes.wiring import REGISTRY, Request


class UserError(RuntimeError):
    """Bad input from the command line or an input file; the message is shown as is."""


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=EMBEDDED_MODEL_NAME, help="Hugging Face name, local folder, or 'organism'")
    parser.add_argument("--revision", default=None, help="hub revision (e.g. step1000) or local revision folder")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    parser.add_argument("--dtype", default="auto", help="auto, float32, bfloat16, float16")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow code from the model's repository")


def add_chat_template_arg(parser: argparse.ArgumentParser) -> None:
    """`--chat-template auto|on|off` for every command that builds prompts (part of the run key)."""
    parser.add_argument(
        "--chat-template",
        choices=CHAT_MODES,
        default="auto",
        help="put prompts through the tokenizer's chat template: auto (when it has one), on, off",
    )


def add_output_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    parser.add_argument("--db", default=None, help="result database path (default: $ASSOCLENS_DB or .assoclens/)")
    parser.add_argument("--no-cache", action="store_true", help="recompute even when a cached run exists")


def add_executor_args(parser: argparse.ArgumentParser, tasks: str) -> None:
    """`--executor local|ray`, `--ray-address`, `--workers` for commands that fan out into several runs."""
    group = parser.add_argument_group("execution", f"how the runs are computed; {tasks}")
    group.add_argument("--executor", choices=("local", "ray"), default="local",
                       help="local: one after another in this process; ray: on Ray workers (pip install -r "
                            "requirements-ray.txt), results still stored by this process")  # fmt: skip
    group.add_argument("--ray-address", default=None, metavar="ADDRESS",
                       help="join the Ray cluster at HOST:PORT (`ray start --head` prints it; implies --executor "
                            "ray); default: start a local Ray")  # fmt: skip
    group.add_argument("--workers", type=int, default=2, help="Ray workers (one actor each, model kept across tasks)")
    group.add_argument("--shard-items", type=int, default=SHARD_ITEMS, metavar="N",
                       help=f"Ray: testbed items per task of a testbed curve (default {SHARD_ITEMS}); the shards are "
                            "merged into one run (one bootstrap, one RW fit) by this process")  # fmt: skip


def run_requests(args: argparse.Namespace, requests: list[Request], description: str) -> BatchResult:
    """Run `requests` on the executor the arguments name: stored runs are served, the rest computed and stored by
    this process, each failure listed with its reason (the others go on)."""
    progress, close = tqdm_progress(description)
    try:
        executor = make_executor(getattr(args, "executor", "local"), getattr(args, "ray_address", None),
                                 getattr(args, "workers", 2), getattr(args, "shard_items", SHARD_ITEMS))  # fmt: skip
        try:
            return executor.run_all(store_from_args(args), requests, progress=progress,
                                    refresh=getattr(args, "no_cache", False))  # fmt: skip
        finally:
            executor.close()
    except ExecutorError as error:
        raise UserError(str(error)) from None
    finally:
        close()


def report_failures(batch: BatchResult) -> list[dict]:
    """Each failure as one stderr line and as JSON-able dicts (for the command's `failures`)."""
    for failure in batch.failures:
        print(f"failed: {failure.request}: {failure.reason}", file=sys.stderr)
    return [failure.as_dict() for failure in batch.failures]


def spec_from_args(args: argparse.Namespace) -> ModelSpec:
    return ModelSpec(
        name=args.model,
        revision=args.revision,
        device=args.device,
        dtype=args.dtype,
        trust_remote_code=args.trust_remote_code,
    )


def store_from_args(args: argparse.Namespace) -> ResultStore:
    store = ResultStore(getattr(args, "db", None))
    if store.notice:
        print(store.notice, file=sys.stderr)
    return store


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Libraries sometimes print to stdout; keep stdout for the one JSON object."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def tqdm_progress(description: str) -> tuple[Callable[[float, str], None], Callable[[], None]]:
    """A progress callback (fraction in [0, 1], message) drawing a tqdm bar on stderr, and its closer."""
    from tqdm import tqdm

    bar = tqdm(total=1000, desc=description, file=sys.stderr, leave=False, disable=not sys.stderr.isatty())

    def update(fraction: float, message: str = "") -> None:
        bar.n = int(max(0.0, min(1.0, fraction)) * 1000)
        if message:
            bar.set_postfix_str(message, refresh=False)
        bar.refresh()

    return update, bar.close


def run_probe(
    args: argparse.Namespace, probe: str, config: object, inputs: object = None, spec: ModelSpec | None = None
) -> StoredRun:
    """Serve `probe` from the store or compute and store it, through the wiring layer (as the pages do).

    The model is the one the arguments name (or `spec`); probes that train their own model take none."""
    own_model = REGISTRY[probe].own_model is not None
    request = Request(probe, config, None if own_model else (spec or spec_from_args(args)), inputs)
    progress, close = tqdm_progress(probe)
    try:
        return wiring.run(store_from_args(args), request, progress=progress, refresh=args.no_cache)
    finally:
        close()


def emit(result: dict, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(result, default=_json_default) + "\n")
        return
    for key, value in result.items():
        text = json.dumps(value, default=_json_default) if isinstance(value, dict | list) else value
        print(f"{key}: {text}")


def _json_default(value: object) -> object:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m probes", description="AssocLens probes, headless.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with quiet_stdout():
            result = args.handler(args)
    except (UserError, ModelLoadError, StoreError, FileNotFoundError, ValueError) as error:
        print(f"error: {_one_line(error)}", file=sys.stderr)
        return 2
    except MemoryError:
        print("error: out of memory; try a smaller model, shorter inputs or a smaller batch", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; runs finished before it are stored, nothing partial", file=sys.stderr)
        return 130
    emit(result, args.json)
    # 1: some runs failed (the others are stored), or a reproduced run does not match its stored tables
    return 1 if isinstance(result, dict) and (result.get("failures") or result.get("match") is False) else 0


def _one_line(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return " ".join(text.split())[:500]


__all__ = [
    "UserError",
    "add_chat_template_arg",
    "add_executor_args",
    "add_model_args",
    "add_output_args",
    "emit",
    "main",
    "report_failures",
    "run_probe",
    "run_requests",
    "spec_from_args",
    "store_from_args",
    "tqdm_progress",
]
