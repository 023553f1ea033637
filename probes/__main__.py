"""Headless CLI: `python -m probes <command> ...`. Subcommands live in `probes/cli/`, one module each."""

import os
import sys

from probes.cli import main

if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # DuckDB 2.0 sometimes aborts during interpreter teardown ("terminate called without an active exception",
    # exit -6) in a process that waited on another process's file lock, after all its work was committed.
    # Everything is written and flushed by now, so leave without running native destructors.
    os._exit(code)
