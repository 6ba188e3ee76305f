"""t5-small's output layer alone: nn.Linear against the transposed layout ReplyDrafter uses on CPU.

    python -m bench.bench_output_layer [--quick]

A decoding step multiplies one row per reply (batch 1 for a draft, 7 for a sweep) by the
(32128, 512) output layer; a teacher-forced evaluation batch multiplies hundreds of rows.
"""

from __future__ import annotations

import argparse

import torch

from bench.common import measure, table
from emoreply.reply.cpu_layout import TransposedLinear


def rows_for(out_features: int, in_features: int, batches: list[int], repeat: int) -> list[dict]:
    """Per batch size: nn.Linear (the baseline) then TransposedLinear on the same weights."""
    torch.manual_seed(0)
    linear = torch.nn.Linear(in_features, out_features, bias=False)
    transposed = TransposedLinear(linear)
    rows = []
    with torch.inference_mode():
        for batch in batches:
            x = torch.randn(batch, in_features)
            plain = measure(lambda: linear(x), warmup=3, repeat=repeat)  # noqa: B023
            fast = measure(lambda: transposed(x), warmup=3, repeat=repeat)  # noqa: B023
            shape = f"({out_features}, {in_features}) weight, {batch} row{'s' if batch > 1 else ''}"
            rows.append({"name": f"nn.Linear, {shape}", **plain, "baseline": True})
            rows.append({"name": f"TransposedLinear, {shape}", **fast, "ratio": plain["median_ms"] / fast["median_ms"]})
    return rows


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few repeats (smoke test)")
    args = parser.parse_args(argv)
    rows = rows_for(32128, 512, [1, 7, 960], 5 if args.quick else 50)
    out = table(rows, f"Output layer, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(out)
    return out


if __name__ == "__main__":
    main()
