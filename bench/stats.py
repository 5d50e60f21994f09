"""Percentiles for benchmark reports."""

from __future__ import annotations

import numpy as np


def summary(values: list[float]) -> dict[str, float]:
    """n, p50, p95, p99, max of ``values`` (milliseconds in, milliseconds out)."""
    if not values:
        return {"n": 0}
    data = np.asarray(values, dtype=float)
    return {
        "n": len(values),
        "p50": round(float(np.percentile(data, 50)), 1),
        "p95": round(float(np.percentile(data, 95)), 1),
        "p99": round(float(np.percentile(data, 99)), 1),
        "max": round(float(data.max()), 1),
    }
