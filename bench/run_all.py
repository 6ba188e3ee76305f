"""Run every benchmark and print their markdown tables.

    python -m bench.run_all [--quick] [--output bench/results.md]

Each benchmark warms up, repeats, and reports ratios against a baseline measured in the same run.
Each runs in a fresh process, so its memory figures are its own (the app-load benchmark serves
the app in-process) and no benchmark inherits another's threads or caches.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def run_bench(name: str, argv: list[str]) -> str:
    """``python -m bench.<name> argv`` in a fresh Python; its markdown (from the first heading on)."""
    done = subprocess.run([sys.executable, "-m", f"bench.{name}", *argv], cwd=ROOT, capture_output=True, text=True)
    if done.returncode or "###" not in done.stdout:
        raise SystemExit(f"bench.{name} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout[done.stdout.index("###") :].strip()


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few repeats (smoke test)")
    parser.add_argument("--output", help="also write the tables to this markdown file")
    args = parser.parse_args(argv)
    quick = ["--quick"] if args.quick else []
    load = ["--clients", "4", "--requests", "2"] if args.quick else []
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    benches = {
        "bench_emotion": quick,
        "bench_reply": quick,
        "bench_decode_step": quick,
        "bench_linear_rows": quick,
        "bench_handler": quick,
        "bench_app_load": load,
    }
    tables = [run_bench(name, argv) for name, argv in benches.items()]
    header = (
        f"`python -m bench.run_all{' --quick' if args.quick else ''}`, started {started}: "
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}"
    )
    out = "\n\n".join([header, *tables]) + "\n"
    if args.output:
        Path(args.output).write_text(out)
    return out


if __name__ == "__main__":
    print(main())
