"""A child that runs out of device memory exits 5, which the Job's podFailurePolicy does not
retry: the same function at the same batch size would run out again."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from orchestrator.backends.kubernetes import KILLED
from orchestrator.contract import PERMANENT_EXIT_CODES, ExitCode, PackSpec, TrialSpec
from orchestrator.trainer import run as run_mod
from orchestrator.trainer.errors import OutOfMemory, is_out_of_memory


@pytest.mark.parametrize(("error", "expected"), [
    (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
    (RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0)"), True),
    (RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"), True),
    (RuntimeError("mat1 and mat2 shapes cannot be multiplied"), False),
    (MemoryError(), False),  # host memory: the pod's limit, whose kill is exit 137
])
def test_out_of_memory_is_told_apart_from_other_errors(error: BaseException, expected: bool) -> None:
    assert is_out_of_memory(error) is expected


def test_out_of_memory_is_a_permanent_exit_code_of_the_job() -> None:
    assert OutOfMemory("x").exit_code == ExitCode.OUT_OF_MEMORY == 5
    failing = {*PERMANENT_EXIT_CODES, KILLED}  # what the Job's podFailurePolicy fails on
    assert failing == {int(ExitCode.BAD_INPUT), int(ExitCode.NON_FINITE_LOSS), 5, 137}
    assert int(ExitCode.INFRASTRUCTURE) not in failing


class FakeRun:
    def __init__(self) -> None:
        self.run_id, self.tags, self.status = "run-1", {}, None

    def set_tags(self, tags: dict[str, Any]) -> None:
        self.tags.update(tags)

    def finish(self, status: str) -> None:
        self.status = status


def test_a_pack_that_runs_out_of_device_memory_fails_its_runs_and_exits_5(
        monkeypatch: pytest.MonkeyPatch) -> None:
    run = FakeRun()

    def train_pack(*_: Any) -> Any:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(run_mod.loop, "resolve", lambda cfg: None)
    monkeypatch.setattr(run_mod.data_mod, "load", lambda cfg, cache: None)
    monkeypatch.setattr(run_mod.RunTracker, "open", staticmethod(lambda *a, **kw: run))
    monkeypatch.setattr(run_mod, "_prepare", lambda *a: None)
    monkeypatch.setattr(run_mod.loop, "train_pack", train_pack)
    spec = PackSpec(pack=[TrialSpec(expression="max(id(x), relu(x))", run_id="run-1")])
    with pytest.raises(OutOfMemory, match="out of device memory: CUDA out of memory"):
        run_mod.run_pack(spec, tracking_uri="http://mlflow:5000")
    assert run.status == "FAILED" and run.tags["actsearch.failure"] == "oom"
