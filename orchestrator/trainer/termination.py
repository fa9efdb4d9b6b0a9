"""SIGTERM in a child: stop between two training steps, store a checkpoint, exit to be retried.

Kubernetes ends a pod (a node drain, a pre-emption, a deleted Job) with SIGTERM and, after the
pod's grace period (30 s by default), SIGKILL; the local backend does the same on cancel. A
child that died on the spot would lose everything since its last periodic checkpoint. So
``actsearch-train`` answers SIGTERM (``answering_sigterm``) by only recording it while the
training loop runs: the loop (``trainer.loop.train_pack``) looks at ``requested`` after every
step, stores a checkpoint of every member still training and raises ``Interrupted``; the entry
point leaves the runs RUNNING (the next attempt attaches and resumes, as after an
infrastructure error) and exits ``ExitCode.INTERRUPTED`` (143), which the Job's
podFailurePolicy retries.

Before training starts (loading data, compiling) there is nothing to save: the handler raises
``Interrupted`` at once. Once training ended (the last step done), the child finishes: its final
evaluation and logging take less than the grace period and give the result itself.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from orchestrator.trainer.errors import Interrupted


class Termination:
    """Whether a SIGTERM came, and whether the training loop will answer it."""

    def __init__(self) -> None:
        self.signalled = False
        self.deferred = False  # the training loop runs (or ran): it answers, not the handler

    def handle(self, signum: int, frame: FrameType | None) -> None:
        self.signalled = True
        if not self.deferred:
            raise Interrupted("stopped by SIGTERM before training started; nothing to save")

    def requested(self) -> bool:
        return self.signalled


TERMINATION = Termination()
"""The process's one state: signals are per process."""


@contextmanager
def answering_sigterm() -> Iterator[None]:
    """Answer SIGTERM as described above while the block runs, then put the previous handler
    back (``actsearch-train`` run in-process, by tests, leaves its caller's handler alone). A
    no-op outside the main thread, where Python allows no signal handler."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, TERMINATION.handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        TERMINATION.signalled = TERMINATION.deferred = False


def training_started() -> None:
    """From now on the training loop answers a SIGTERM, at its next step."""
    TERMINATION.deferred = True


def requested() -> bool:
    """Whether a SIGTERM asked this child to stop."""
    return TERMINATION.requested()
