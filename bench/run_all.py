"""Run every benchmark and print their markdown tables.

    python bench/run_all.py [--quick] [--output bench/results.md]

Each benchmark warms up, repeats, and reports ratios against a baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import bench_app_load  # noqa: E402
import bench_emotion  # noqa: E402
import bench_handler  # noqa: E402
import bench_reply  # noqa: E402


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few repeats (smoke test)")
    parser.add_argument("--output", help="also write the tables to this markdown file")
    args = parser.parse_args(argv)
    quick = ["--quick"] if args.quick else []
    load = ["--clients", "4", "--requests", "2"] if args.quick else []
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    tables = [bench_emotion.main(quick), bench_reply.main(quick), bench_handler.main(quick), bench_app_load.main(load)]
    header = (
        f"`python bench/run_all.py{' --quick' if args.quick else ''}`, started {started}: "
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}"
    )
    out = "\n\n".join([header, *tables]) + "\n"
    if args.output:
        Path(args.output).write_text(out)
    return out


if __name__ == "__main__":
    main()
