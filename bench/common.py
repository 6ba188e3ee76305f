"""Timing helpers for the benchmarks: warm up, repeat, report median and p95 in milliseconds."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable


def peak_rss_mb() -> float:
    """This process's peak resident memory in MiB: VmHWM, which (unlike ru_maxrss) restarts at exec.

    ru_maxrss survives fork + exec, so a process started by a big parent reports the parent's peak.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(fn: Callable[[], object], warmup: int = 5, repeat: int = 50) -> dict[str, float]:
    """Median and p95 wall time of ``fn()`` in ms."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"median_ms": statistics.median(times), "p95_ms": times[min(len(times) - 1, int(0.95 * len(times)))]}


def table(rows: list[dict], title: str, ratio: str = "speed-up vs baseline") -> str:
    """Markdown table of benchmark rows (name, median, p95, ``ratio`` column, note); rows without times show —."""
    lines = [
        f"### {title} ({os.cpu_count()} CPU cores)",
        "",
        f"| benchmark | median | p95 | {ratio} | note |",
        "|---|---|---|---|---|",
    ]

    def ms(value: float | None) -> str:
        return "—" if value is None else f"{value:.2f} ms"

    for r in rows:
        ratio = f"{r['ratio']:.2f}x" if r.get("ratio") else "baseline" if r.get("baseline") else ""
        lines.append(
            f"| {r['name']} | {ms(r.get('median_ms'))} | {ms(r.get('p95_ms'))} | {ratio} | {r.get('note', '')} |"
        )
    return "\n".join(lines)
