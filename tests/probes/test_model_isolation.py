"""Steering hooks on a shared model never reach another thread's forward passes (probes.models.exclusive)."""

from __future__ import annotations

import threading
import time

import numpy as np
import torch

from probes.induction import scores
from probes.models import ModelSpec, exclusive, load_model
from probes.steering.hooks import steering

SCAN = scores.ScanConfig(seq_len=20, n_seqs=4, copying=False)


def induction_table(model) -> np.ndarray:
    return scores.run(model, SCAN).scores["induction"]


def test_a_scan_beside_steering_in_another_thread_is_the_unsteered_scan_every_time() -> None:
    model = load_model(ModelSpec())
    clean = induction_table(model)
    push = torch.full((1, int(model.cfg.d_model)), 50.0)  # strong enough to change every later layer's attention
    with steering(model, {0: [push]}, prompt_lengths=1, n_prompt_positions=1):
        steered = induction_table(model)  # same thread: the steering is seen, as its owner means it to be
    assert not np.allclose(steered, clean)

    overlapping = threading.Event()
    stop = threading.Event()

    def steer_repeatedly() -> None:
        tokens = torch.zeros((1, 8), dtype=torch.long)
        while not stop.is_set():
            with steering(model, {0: [push]}, prompt_lengths=1, n_prompt_positions=1), torch.no_grad():
                overlapping.set()
                for _ in range(5):
                    model(tokens)
                time.sleep(0.01)  # hooks stay attached while this thread sleeps

    steerer = threading.Thread(target=steer_repeatedly)
    steerer.start()
    try:
        assert overlapping.wait(30)
        scans = [induction_table(model) for _ in range(12)]
    finally:
        stop.set()
        steerer.join(60)
    assert all(np.array_equal(scan, clean) for scan in scans)


def test_the_lock_is_one_per_model_and_reentrant() -> None:
    first, second = object.__new__(torch.nn.Module), object.__new__(torch.nn.Module)
    assert exclusive(first) is exclusive(first)
    assert exclusive(first) is not exclusive(second)
    with exclusive(first), exclusive(first):
        pass
