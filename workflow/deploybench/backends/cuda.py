"""What the CUDA backends share: torch CUDA tensors as device buffers (pycuda has no binary
wheel), CUDA-event timing on the work stream, the GPU's facts in every record, and the checks
that a job really runs on a GPU.

A CUDA runner's ``run`` takes the batch on the device (copied once), records a CUDA event,
launches the work on its stream, records a second event and waits for it: the device time
between the events is the latency the harness keeps (``device_timer``); outputs stay on the
device. The host latency with both copies is ``infer``'s, measured separately.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import BackendUnavailable
from ..gpu import gpu_facts
from .base import Runner

NO_CUDA_IN_JOB = (
    "no CUDA device visible to this job (torch.cuda.is_available() is False): run it on a GPU "
    "host or a GPU partition"
)


def require_cuda(torch) -> None:
    if not torch.cuda.is_available():
        raise BackendUnavailable(NO_CUDA_IN_JOB)


class CudaEventTimer:
    """Two CUDA events around the work on ``stream``; leaving the block waits for the second."""

    def __init__(self, torch, stream) -> None:
        self._stream = stream
        self._start = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)

    def __enter__(self) -> CudaEventTimer:
        self._start.record(self._stream)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._end.record(self._stream)
        self._end.synchronize()

    def elapsed_ms(self) -> float:
        return float(self._start.elapsed_time(self._end))


class CudaRunner(Runner):
    device_timer = True

    def __init__(self) -> None:
        super().__init__()
        import torch

        require_cuda(torch)
        self._torch = torch
        self._device = torch.device("cuda", torch.cuda.current_device())
        # the current stream: the input copy and the work are ordered on it without extra waits
        self._stream = torch.cuda.current_stream(self._device)
        self._timer = CudaEventTimer(torch, self._stream)
        self._cached_host: np.ndarray | None = None
        self._cached_device = None
        properties = torch.cuda.get_device_properties(self._device)
        self.execution_info = {
            "device": torch.cuda.get_device_name(self._device),
            "compute_capability": f"{properties.major}.{properties.minor}",
            "timing_clock": "CUDA events on the work stream (device time, no copies)",
            "gpu": gpu_facts(self._device.index) or {},
        }

    def device_input(self, batch: Any, dtype=None):
        """``batch`` as a contiguous CUDA tensor. A host array is copied once and reused while the
        same array object comes back (the timing loop's): timed runs measure the work, not the
        copy; ``infer`` always copies, so the host latency includes it."""
        if batch is self._cached_host:
            return self._cached_device
        torch = self._torch
        tensor = batch if isinstance(batch, torch.Tensor) else torch.from_numpy(np.asarray(batch))
        tensor = tensor.to(self._device, dtype=dtype or tensor.dtype).contiguous()
        if isinstance(batch, np.ndarray):
            self._cached_host, self._cached_device = batch, tensor
        return tensor

    def infer(self, batch: Any) -> dict[str, np.ndarray]:
        self._cached_host = None  # the copy in, the work, the copy out: what a caller waits for
        return self.to_host(self.run(batch))

    def last_device_ms(self) -> float:
        return self._timer.elapsed_ms()

    def to_host(self, outputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        torch = self._torch
        return {
            name: value.detach().float().cpu().numpy()
            if isinstance(value, torch.Tensor)
            else np.asarray(value)
            for name, value in outputs.items()
        }
