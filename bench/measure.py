"""How the bench measures: a call's median in process, a load run with wrk, the machine it ran on."""
from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loanxai.core.manifest import library_versions

WRK_SCRIPT = Path(__file__).resolve().parent / "wrk.lua"


def median_ms(call: Callable[[], Any], budget_s: float, max_runs: int = 2000) -> float:
    """Median wall time of ``call`` in ms, over as many runs as fit in ``budget_s`` (at least 5)."""
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < 5 or (time.perf_counter() < deadline and len(times) < max_runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def wrk(url: str, body: str, connections: int, duration_s: float) -> dict[str, float]:
    """One wrk run: requests/s, p50 and p99 latency (ms), errors."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        handle.write(body)
    try:
        threads = min(connections, 2)
        result = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration_s))}s", "--timeout", "10s",
             "-s", str(WRK_SCRIPT), url],
            env={**os.environ, "BODY_FILE": handle.name}, capture_output=True, text=True,
            timeout=duration_s + 60, check=True,
        )
    finally:
        os.unlink(handle.name)
    line = next(text for text in result.stdout.splitlines() if text.startswith("WRK_JSON "))
    raw = json.loads(line.removeprefix("WRK_JSON "))
    return {
        "requests_per_s": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1e3,
        "p99_ms": raw["p99_us"] / 1e3,
        "requests": raw["requests"],
        "errors": raw["errors"] + raw["non_2xx"],
    }


def machine() -> dict[str, Any]:
    """What the results were measured on."""
    cpuinfo, meminfo = Path("/proc/cpuinfo").read_text().splitlines(), Path("/proc/meminfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    memory_kb = int(next(line.split()[1] for line in meminfo if line.startswith("MemTotal")))
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(memory_kb / 2**20, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": library_versions(["seldon-core", "scikit-learn", "treelite", "numpy", "alibi"]),
        # the console's stage alone runs without wrk
        "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()[0]
        if shutil.which("wrk") else "no wrk",
    }
