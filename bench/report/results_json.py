"""bench/results/latest.json: the results without their per-call series."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: Per-call series stay in the plots, not in the JSON.
_SERIES = {"completions", "latencies", "b_latencies", "series", "per_process_rate"}


def write_json(results: dict[str, Any], out: Path) -> None:
    def trimmed(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: trimmed(v) for k, v in value.items() if k not in _SERIES}
        return value

    (out / "latest.json").write_text(json.dumps(trimmed(results), indent=2) + "\n")
