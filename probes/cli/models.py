"""`python -m probes models`: what models can be named."""

from __future__ import annotations

import argparse

from probes.cli import add_output_args
from probes.models import EMBEDDED_MODEL_DIR, EMBEDDED_MODEL_NAME, local_revisions


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list the embedded model and how to name others")
    add_output_args(parser)
    parser.set_defaults(handler=list_models)


def list_models(args: argparse.Namespace) -> dict:
    return {
        "embedded": {
            "name": EMBEDDED_MODEL_NAME,
            "path": str(EMBEDDED_MODEL_DIR),
            "revisions": local_revisions(EMBEDDED_MODEL_DIR),
            "trained": (EMBEDDED_MODEL_DIR / "config.json").is_file(),
        },
        "how_to_name_others": [
            "a Hugging Face model id, e.g. --model EleutherAI/pythia-70m (needs network or a local HF cache)",
            "a training checkpoint of it, e.g. --model EleutherAI/pythia-70m --revision step1000",
            "a local folder written by save_pretrained, e.g. --model ./my-model (its revisions/<name> via --revision)",
        ],
    }
