"""Headless CLI: `python -m probes <command> ...`. Subcommands live in `probes/cli/`, one module each."""

from probes.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
