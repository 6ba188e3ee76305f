"""Linear layers at a decoding step's few rows: nn.Linear against FewRowsLinear (ReplyDrafter on CPU).

    python -m bench.bench_linear_rows [--quick]

SmolLM2-135M's shapes with random weights: the 210 linear layers of its 30 decoder layers called
one after the other (405 MiB read from memory, as a decoding step reads them), and its (49152, 576)
output layer. Per number of rows: 1 (a plain draft), 4 (the app's side by side: a guided reply's
three rows and the base's one), 21 (a guided 7-emotion sweep), 64 (``FEW_ROWS``) and 192 (an
evaluation batch of 64 guided replies, where both take nn.Linear's path).
"""

from __future__ import annotations

import argparse
import copy

import torch
from torch import nn

from bench.common import measure, table
from emoreply.reply.cpu_layout import use_few_rows_linears

# (in, out) of q, k, v, o, gate, up and down_proj
LAYER_SHAPES = [(576, 576), (576, 192), (576, 192), (576, 576), (576, 1536), (576, 1536), (1536, 576)]
NUM_LAYERS = 30
OUTPUT_LAYER = (576, 49152)
ROWS = [1, 4, 21, 64, 192]


def rows_for(stacks: dict[str, list[tuple[int, int]]], rows: list[int], repeat: int) -> list[dict]:
    """Per stack of (in, out) layers and per number of rows: nn.Linear (the baseline), then
    FewRowsLinear on the same weights."""
    torch.manual_seed(0)
    out = []
    for name, shapes in stacks.items():
        plain = nn.ModuleList(nn.Linear(i, o, bias=False) for i, o in shapes)
        fast = use_few_rows_linears(nn.ModuleList(copy.copy(layer) for layer in plain))  # shares the weights
        size = sum(p.numel() * p.element_size() for p in plain.parameters()) / 2**20
        for n in rows:
            inputs = [torch.randn(n, i) for i, _ in shapes]

            def run(layers: nn.ModuleList, inputs: list[torch.Tensor] = inputs) -> None:
                for layer, x in zip(layers, inputs, strict=True):
                    layer(x)

            with torch.inference_mode():
                slow = measure(lambda: run(plain), warmup=2, repeat=repeat)  # noqa: B023
                quick = measure(lambda: run(fast), warmup=2, repeat=repeat)  # noqa: B023
            label = f"{name} ({size:.0f} MiB), {n} row{'s' if n > 1 else ''}"
            gbs = f"{size / 1024 / (quick['median_ms'] / 1000):.1f} GiB/s"
            out.append({"name": f"nn.Linear, {label}", **slow, "baseline": True})
            out.append({"name": f"FewRowsLinear, {label}", **quick, "ratio": slow["median_ms"] / quick["median_ms"]})
            out[-1]["note"] = f"{gbs} (nn.Linear {size / 1024 / (slow['median_ms'] / 1000):.1f})"
    return out


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one decoder layer, few repeats (smoke test)")
    args = parser.parse_args(argv)
    layers = 1 if args.quick else NUM_LAYERS
    stacks = {f"{layers} decoder layers' linear layers": LAYER_SHAPES * layers, "output layer": [OUTPUT_LAYER]}
    rows = rows_for(stacks, ROWS, 3 if args.quick else 20)
    out = table(rows, f"Linear layers by rows, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(out)
    return out


if __name__ == "__main__":
    main()
