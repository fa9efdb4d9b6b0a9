"""The child's expected errors, each mapped onto its exit code (``orchestrator.contract.ExitCode``,
where the codes and what a Kubernetes Job does on each are defined)."""

from __future__ import annotations

from orchestrator.contract import ExitCode


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


class Interrupted(TrainerError):
    """SIGTERM: the child stopped between two steps, its checkpoint stored; worth a retry."""

    exit_code = ExitCode.INTERRUPTED


class OutOfMemory(TrainerError):
    """The device ran out of memory: permanent for this function and configuration."""

    exit_code = ExitCode.OUT_OF_MEMORY


def is_out_of_memory(e: BaseException) -> bool:
    """torch's ``OutOfMemoryError`` (CUDA, or another accelerator's), or an allocator failure
    reported as a plain RuntimeError, told apart without importing torch."""
    text = str(e)
    return (type(e).__name__ == "OutOfMemoryError" or "CUDA out of memory" in text
            or "CUBLAS_STATUS_ALLOC_FAILED" in text)
