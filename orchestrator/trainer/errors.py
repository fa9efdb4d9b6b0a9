"""Exit codes of a child and the errors that map onto them, defined in one place.

A Kubernetes Job's ``podFailurePolicy`` keys on these codes: ``FailJob`` on 2, 3 and 5 (retrying a
bad input, a diverging function or one that does not fit in the GPU's memory cannot help), and on
137 when the pod was not disrupted (the kernel's OOM killer), normal retries on 4 (an unreachable
server or a dropped download may succeed on the next attempt).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit status of ``actsearch-train``."""

    OK = 0
    """Training finished; the run is FINISHED and carries ``val_accuracy``."""
    BAD_INPUT = 2
    """Unparsable expression, invalid configuration or unusable data; no run was started."""
    NON_FINITE_LOSS = 3
    """The loss became NaN or infinite; the run is FAILED with tag ``actsearch.failure=nan``."""
    INFRASTRUCTURE = 4
    """MLflow, S3 or the data source could not be reached; retrying may succeed."""
    OUT_OF_MEMORY = 5
    """CUDA ran out of memory; the run is FAILED with tag ``actsearch.failure=oom``. The same
    function at the same batch size would again: not retried."""


class TrainerError(Exception):
    """Base of the child's expected failures; ``exit_code`` says how the process ends."""

    exit_code: ExitCode = ExitCode.INFRASTRUCTURE


class BadInput(TrainerError):
    """The expression, the configuration or the data is wrong: permanent."""

    exit_code = ExitCode.BAD_INPUT


class NonFiniteLoss(TrainerError):
    """Training diverged: permanent for this expression and configuration."""

    exit_code = ExitCode.NON_FINITE_LOSS

    def __init__(self, step: int, loss: float) -> None:
        self.step = step
        self.loss = loss
        super().__init__(f"the training loss became {loss} at step {step}; training stopped")


class Infrastructure(TrainerError):
    """A server or a download failed: temporary, worth a retry."""

    exit_code = ExitCode.INFRASTRUCTURE


class OutOfMemory(TrainerError):
    """The device ran out of memory: permanent for this function and configuration."""

    exit_code = ExitCode.OUT_OF_MEMORY


def is_out_of_memory(e: BaseException) -> bool:
    """torch's ``OutOfMemoryError`` (CUDA, or another accelerator's), or an allocator failure
    reported as a plain RuntimeError, told apart without importing torch."""
    text = str(e)
    return (type(e).__name__ == "OutOfMemoryError" or "CUDA out of memory" in text
            or "CUBLAS_STATUS_ALLOC_FAILED" in text)
