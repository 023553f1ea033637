"""The per-model lock serves waiting threads in arrival order, is re-entrant, and times out cleanly."""

from __future__ import annotations

import threading
import time

import pytest

from probes.fairlock import FairRLock


def hold_then(lock: FairRLock, started: threading.Event, order: list[str], name: str) -> threading.Thread:
    def work() -> None:
        started.set()
        with lock:
            order.append(name)

    thread = threading.Thread(target=work)
    thread.start()
    return thread


def test_waiters_are_served_in_the_order_they_asked() -> None:
    lock, order = FairRLock(), []
    lock.acquire()
    threads = []
    for name in "abcd":
        started = threading.Event()
        threads.append(hold_then(lock, started, order, name))
        started.wait()
        time.sleep(0.05)  # the thread is now waiting in line
    lock.release()
    for thread in threads:
        thread.join(5)
    assert order == list("abcd")


def test_a_thread_asking_again_at_once_goes_behind_the_waiter() -> None:
    """Release and ask again in one breath (as back-to-back requests do): threading.RLock gives the lock straight
    back to the same thread while the waiter is still waking up, so a stream of requests can starve it."""
    lock, order = FairRLock(), []
    lock.acquire()
    started = threading.Event()
    waiter = hold_then(lock, started, order, "waiter")
    started.wait()
    time.sleep(0.05)  # the waiter is now in line
    lock.release()
    lock.acquire()  # the same thread at once: must queue behind the waiter
    order.append("again")
    lock.release()
    waiter.join(5)
    assert order == ["waiter", "again"]


def test_reentrant_release_errors_and_timeouts() -> None:
    lock = FairRLock()
    with lock, lock:
        assert not run_in_thread(lambda: lock.acquire(timeout=0.05))  # held: another thread times out
    assert run_in_thread(lambda: lock.acquire(blocking=False))  # free again after both exits
    with pytest.raises(RuntimeError, match="does not hold"):
        lock.release()


def run_in_thread(call) -> bool:
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(call()))
    thread.start()
    thread.join(5)
    return result[0]
