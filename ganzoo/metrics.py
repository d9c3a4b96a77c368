"""The metrics window: per-step metrics averaged between two log lines, with the throughput.

Values are summed as tensors, on whatever device they live, and read back to the host only when
a line is written, so logging costs no synchronisation inside a step.
"""

from __future__ import annotations

import time
from typing import Any

import torch


class MetricsWindow:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._sums: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}
        self._images = 0
        self._start = time.perf_counter()

    def add(self, out: dict[str, torch.Tensor], images: int) -> None:
        for key, value in out.items():
            value = value.detach().float()
            self._sums[key] = self._sums[key] + value if key in self._sums else value
            self._counts[key] = self._counts.get(key, 0) + 1
        self._images += images

    def __bool__(self) -> bool:
        return bool(self._counts)

    def flush(self, **fields: Any) -> dict[str, Any]:
        """The averages so far plus ``images_per_s`` and ``fields``, then start a new window."""
        now = time.perf_counter()
        record = {**{k: v for k, v in fields.items() if k in ("step", "epoch")},
                  **{k: float(self._sums[k]) / self._counts[k] for k in sorted(self._sums)},
                  "images_per_s": self._images / max(now - self._start, 1e-9),
                  **{k: v for k, v in fields.items() if k not in ("step", "epoch")}}
        self.reset()
        return record
