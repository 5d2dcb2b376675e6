"""What the CUDA backends share: torch CUDA tensors as device buffers (pycuda has no binary
wheel), CUDA-event timing on the work stream, the GPU's facts in every record, and the checks
that a job really runs on a GPU.

A CUDA runner owns a dedicated (non-default) stream: the input copy, the work and both events
go on it. The legacy default stream synchronises with every other stream, which adds waits
inside the timed events (pytorch/TensorRT#3190), and ONNX Runtime ignores stream 0 as a
``user_compute_stream``. ``run`` takes the batch on the device (copied once), records a CUDA
event, launches the work on that stream, records a second event and waits for it: the device
time between the events is the latency the harness keeps (``device_timer``); outputs stay on
the device. The host latency with both copies is ``infer``'s, measured separately.

An engine built for a range of batches (``batch_range``: a TensorRT optimization profile)
refuses any other batch; ``infer`` splits a larger batch (parity's whole evaluation set) into
batches inside the range.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import BackendUnavailable, ConfigError
from ..feeds import batches, concatenated, cycled, feed_count
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
        self._stream = torch.cuda.Stream(self._device)
        self._timer = CudaEventTimer(torch, self._stream)
        self._cached_host: Mapping[str, Any] | None = None
        self._cached_device = None
        #: (min, max) batch the loaded engine accepts; None: any batch the graph takes
        self.batch_range: tuple[int, int] | None = None
        properties = torch.cuda.get_device_properties(self._device)
        self.execution_info = {
            "device": torch.cuda.get_device_name(self._device),
            "compute_capability": f"{properties.major}.{properties.minor}",
            "timing_clock": "CUDA events on the runner's own stream (device time, no copies)",
            "gpu": gpu_facts(properties.uuid) or {},
        }

    @property
    def stream(self):
        """The dedicated stream every copy, launch and event of this runner goes on."""
        return self._stream

    def on_stream(self):
        return self._torch.cuda.stream(self._stream)

    def device_inputs(self, feeds: Mapping[str, Any], dtype=None) -> dict[str, Any]:
        """``feeds`` as contiguous CUDA tensors (``dtype``: one type, or per-name callable
        results). Host arrays are copied once and reused while the same arrays come back (the
        timing loop's): timed runs measure the work, not the copy; ``infer`` always copies, so
        the host latency includes it."""
        cached = self._cached_host
        if (
            cached is not None
            and list(cached) == list(feeds)
            and all(feeds[name] is value for name, value in cached.items())
        ):
            return self._cached_device
        torch = self._torch
        tensors = {}
        with self.on_stream():
            for name, value in feeds.items():
                tensor = value if isinstance(value, torch.Tensor) else torch.from_numpy(value)
                wanted = dtype(name) if callable(dtype) else dtype
                tensors[name] = tensor.to(self._device, dtype=wanted or tensor.dtype).contiguous()
        # the arrays themselves are held: their ids cannot be reused while they are compared
        self._cached_host, self._cached_device = dict(feeds), tensors
        return tensors

    def check_batch(self, batch: int) -> None:
        """A one-line error for a batch outside :attr:`batch_range`, before the engine fails
        with a message that does not say why."""
        if self.batch_range is None:
            return
        low, high = self.batch_range
        if not low <= batch <= high:
            raise ConfigError(
                f"batch {batch} is outside the engine's optimization profile ({low}..{high}): "
                "set backend_options profile_min_batch/profile_max_batch to cover it"
            )

    def infer(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        self._cached_host = None  # the copy in, the work, the copy out: what a caller waits for
        if self.batch_range is None or feed_count(feeds) <= self.batch_range[1]:
            return self._infer_one(feeds)
        low, high = self.batch_range
        chunks = []
        for chunk, real in batches(feeds, high):
            if real < low:  # the tail below the profile's minimum: pad, then drop the padding
                chunk = cycled(chunk, low)
            outputs = self._infer_one(chunk)
            chunks.append({name: value[:real] for name, value in outputs.items()})
        return concatenated(chunks)

    def _infer_one(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        self._cached_host = None
        outputs = self.run(feeds)
        with self.on_stream():
            return self.to_host(outputs)

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
