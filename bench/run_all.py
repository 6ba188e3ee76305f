"""Run every benchmark and print their markdown tables.

    python bench/run_all.py [--quick]

Each benchmark warms up, repeats, and reports ratios against a baseline measured in the same run.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import bench_app_load  # noqa: E402
import bench_emotion  # noqa: E402
import bench_handler  # noqa: E402
import bench_reply  # noqa: E402


def main(argv: list[str] | None = None) -> str:
    quick = ["--quick"] if "--quick" in (argv if argv is not None else sys.argv[1:]) else []
    load = ["--clients", "4", "--requests", "2"] if quick else []
    tables = [bench_emotion.main(quick), bench_reply.main(quick), bench_handler.main(quick), bench_app_load.main(load)]
    return "\n\n".join(tables)


if __name__ == "__main__":
    main()
