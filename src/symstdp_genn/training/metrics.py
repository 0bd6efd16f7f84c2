"""The run's ``metrics.jsonl``: one JSON object per event, each with a timestamp, so
plots, sweeps and people read one timeline across resumes."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np


class MetricsLog:
    """Append-only JSON lines; one object per event (start, train progress, evaluation).

    Every line carries ``time`` (ISO 8601, UTC) and ``elapsed_s`` (seconds since this
    training session began), so a log that spans resumes still reads as a timeline."""

    def __init__(self, path: Path):
        self.path = path
        self._started = time.monotonic()

    def write(self, event: str, **fields: Any) -> None:
        record = {"event": event,
                  "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                  "elapsed_s": round(time.monotonic() - self._started, 3),
                  **{k: finite(v) for k, v in fields.items()}}
        with self.path.open("a") as handle:
            handle.write(json.dumps(record, sort_keys=True, default=_jsonable, allow_nan=False)
                         + "\n")


def finite(value: Any) -> Any:
    """NaN/inf become null: strict JSON readers (jq, browsers) reject the bare tokens."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(type(value))
