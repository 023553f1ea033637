"""Run small-matrix work on one CPU thread.

Some probes train and decompose matrices of a few dozen rows. On CPU, torch's intra-op thread
pool costs far more than it saves at that size (an SVD of a 64 x 64 matrix is ~15x slower with two busy threads
than with one on a shared machine), so the training loops run under `single_thread()`. It sets torch's global
thread count and restores it on exit; GPU work is unaffected.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
