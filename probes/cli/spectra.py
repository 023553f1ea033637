"""`python -m probes spectra memory|transformer|weights`: Muon vs Adam spectra and tail-class learning."""

from __future__ import annotations

import argparse

from probes.cli import add_model_args, add_output_args, run_probe
from probes.models import ModelSpec
from probes.spectra import memory, transformer, weights


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("spectra", help="Muon vs Adam: singular spectra and tail-class learning")
    commands = parser.add_subparsers(dest="spectra_command", required=True)
    register_memory(commands)
    register_transformer(commands)
    register_weights(commands)


def register_memory(commands: argparse._SubParsersAction) -> None:
    defaults = memory.MemoryConfig()
    parser = commands.add_parser("memory", help="one-layer associative memory: GD, SignGD, Adam, Muon")
    parser.add_argument("--k", type=int, default=defaults.n_classes, help="classes K")
    parser.add_argument("--d", type=int, default=None, help="embedding dimension d (default: K)")
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--embeddings", choices=["identity", "orthogonal"], default=defaults.embeddings)
    parser.add_argument("--frequencies", choices=["zipf", "two_group"], default=defaults.frequencies)
    parser.add_argument("--zipf-exponent", type=float, default=defaults.zipf_exponent)
    parser.add_argument("--imbalance-ratio", type=float, default=defaults.imbalance_ratio, help="two_group only")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="0: full batch")
    parser.add_argument("--eps", type=float, default=defaults.eps)
    parser.add_argument("--optimizers", nargs="+", choices=memory.OPTIMIZERS, default=list(defaults.optimizers))
    parser.add_argument("--lr-gd", type=float, default=defaults.lr_gd)
    parser.add_argument("--lr-signgd", type=float, default=defaults.lr_signgd)
    parser.add_argument("--lr-adam", type=float, default=defaults.lr_adam)
    parser.add_argument("--lr-muon", type=float, default=defaults.lr_muon)
    parser.add_argument("--muon-momentum", type=float, default=defaults.muon_momentum)
    parser.add_argument("--muon-weight-decay", type=float, default=defaults.muon_weight_decay)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    add_output_args(parser)
    parser.set_defaults(handler=memory_command)


def memory_command(args: argparse.Namespace) -> dict:
    cfg = memory.MemoryConfig(
        n_classes=args.k,
        d_model=args.d or args.k,
        embeddings=args.embeddings,
        frequencies=args.frequencies,
        zipf_exponent=args.zipf_exponent,
        imbalance_ratio=args.imbalance_ratio,
        steps=args.steps,
        batch_size=args.batch_size,
        eps=args.eps,
        optimizers=tuple(args.optimizers),
        lr_gd=args.lr_gd,
        lr_signgd=args.lr_signgd,
        lr_adam=args.lr_adam,
        lr_muon=args.lr_muon,
        muon_momentum=args.muon_momentum,
        muon_weight_decay=args.muon_weight_decay,
        seed=args.seed,
    )
    memory.validate(cfg)
    run = run_probe(args, memory.NAME, cfg)
    return {"run_id": run.run_id, "cached": run.cached, **run.summary}


def register_transformer(commands: argparse._SubParsersAction) -> None:
    defaults = transformer.TransformerConfig()
    parser = commands.add_parser("transformer", help="small transformer on heavy-tailed facts: Adam vs Muon")
    parser.add_argument("--setups", nargs="+", choices=transformer.SETUPS, default=list(defaults.setups))
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--individuals", type=int, default=defaults.n_individuals)
    parser.add_argument("--zipf-exponent", type=float, default=defaults.zipf_exponent)
    parser.add_argument("--lr-adam", type=float, default=defaults.lr_adam)
    parser.add_argument("--lr-muon", type=float, default=defaults.lr_muon)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    add_output_args(parser)
    parser.set_defaults(handler=transformer_command)


def transformer_command(args: argparse.Namespace) -> dict:
    cfg = transformer.TransformerConfig(
        setups=tuple(args.setups),
        steps=args.steps,
        n_individuals=args.individuals,
        zipf_exponent=args.zipf_exponent,
        lr_adam=args.lr_adam,
        lr_muon=args.lr_muon,
        seed=args.seed,
    )
    transformer.validate(cfg)
    run = run_probe(args, transformer.NAME, cfg)
    return {"run_id": run.run_id, "cached": run.cached, **run.summary}


def register_weights(commands: argparse._SubParsersAction) -> None:
    defaults = weights.WeightsConfig()
    parser = commands.add_parser("weights", help="per-layer VO and FFN spectra of a model (or two, side by side)")
    add_model_args(parser)
    parser.add_argument("--compare-revision", default=None, help="also measure this revision of the same model")
    parser.add_argument("--top-k", type=int, default=defaults.top_k)
    add_output_args(parser)
    parser.set_defaults(handler=weights_command)


def weights_command(args: argparse.Namespace) -> dict:
    cfg = weights.WeightsConfig(top_k=args.top_k)
    runs = [run_probe(args, weights.NAME, cfg)]
    if args.compare_revision:
        other = ModelSpec(args.model, args.compare_revision, args.device, args.dtype, args.trust_remote_code)
        runs.append(run_probe(args, weights.NAME, cfg, spec=other))
    return {
        "models": [
            {"run_id": run.run_id, "model": run.model_id, "revision": run.revision, "cached": run.cached, **run.summary}
            for run in runs
        ]
    }
