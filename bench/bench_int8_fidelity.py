"""What dynamic int8 costs the default responder: next-token fidelity against fp32, and step speed.

    python -m bench.bench_int8_fidelity [--model NAME_OR_FOLDER] [--quick]

int8 is the only lower precision that is faster on this CPU (docs/benchmarks.md), so whether it
can be the default turns on its quality. The reference is the fine-tuned model with its adapter
merged, in fp32. Each row applies ``torch.ao`` dynamic int8 (int8 weights, activations quantised
per batch with one scale a tensor) to some of its linear layers: all of them with one weight scale
a tensor (``--precision int8``), all of them with one scale an output channel, each layer type
alone, and all but ``down_proj``. Quality: the next-token distribution at the start of the reply,
for the 7-emotion prompts of the app's example messages: mean KL(fp32 || int8) in nats and the
share of prompts whose most likely token is unchanged; for the variants that quantise every layer
(or all but one type), also the share of whole drafts (greedy, with the app's guidance) that come
out identical. Speed: one cached decoding step at batch 2 after a 60-token prompt.
"""

from __future__ import annotations

import argparse
import copy
import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

import app
from bench.common import measure, table
from emoreply.emotion_cnn import EMOTIONS
from emoreply.reply import ReplyDrafter

LAYER_TYPES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def quantized(model: nn.Module, keep: Callable[[str], bool], per_channel: bool = True) -> nn.Module:
    """A copy of ``model`` with the ``nn.Linear`` layers whose names ``keep`` accepts in dynamic int8."""
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

    qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
    model = copy.deepcopy(model)
    spec = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear) and keep(name):
            m.__class__ = nn.Linear  # the drafter's FewRowsLinear: quantize_dynamic swaps nn.Linear only
            spec[name] = qconfig
    with warnings.catch_warnings():  # torch points new code to torchao; the eager API still works
        warnings.filterwarnings("ignore", message=".*(deprecated|torchao).*")
        return quantize_dynamic(model, spec, dtype=torch.qint8)


@torch.inference_mode()
def next_token_logprobs(model: nn.Module, batch: dict) -> torch.Tensor:  # (B, V)
    return model(**batch).logits[:, -1].float().log_softmax(-1)


def fidelity(reference: torch.Tensor, other: torch.Tensor) -> dict[str, float]:
    """Mean KL(reference || other) in nats, and the share of rows with the same most likely token."""
    kl = (reference.exp() * (reference - other)).sum(-1).mean()
    same = (reference.argmax(-1) == other.argmax(-1)).float().mean()
    return {"kl": float(kl), "top1": float(same)}


@torch.inference_mode()
def step_time(model: nn.Module, vocab_size: int, repeat: int) -> dict[str, float]:
    """One cached decoding step at batch 2 after a 60-token prompt."""
    ids = torch.randint(10, vocab_size, (2, 60))
    out = model(input_ids=ids, use_cache=True)
    cache, token, position = out.cache, out.logits[:, -1:].argmax(-1), torch.full((2, 1), 60)

    def step() -> None:
        model(input_ids=token, cache=cache, position_ids=position, use_cache=True)
        cache.crop(-1)  # every timed step sees the same cache length

    return measure(step, warmup=1, repeat=repeat)


def variants(merged: nn.Module, types: tuple[str, ...]) -> dict[str, Callable[[], nn.Module]]:
    """Row name -> a builder of that int8 variant (built one at a time, to hold one copy at once)."""
    rows: dict[str, Callable[[], nn.Module]] = {
        "int8 all linear layers, one weight scale a tensor (--precision int8)": lambda: quantized(
            merged, lambda _: True, per_channel=False
        ),
        "int8 all linear layers, one weight scale a channel": lambda: quantized(merged, lambda _: True),
    }
    for t in types:
        rows[f"int8 {t} only"] = lambda t=t: quantized(merged, lambda n: n.endswith(t))
    rows["int8 all but down_proj"] = lambda: quantized(merged, lambda n: not n.endswith("down_proj"))
    return rows


def drafts(model: nn.Module, like: ReplyDrafter, messages: list[str]) -> list[str]:
    """The 7-emotion sweeps of ``messages`` by ``model``, decoded as ``like`` decodes (guidance included)."""
    drafter = ReplyDrafter(model, like.tokenizer, like.max_new_tokens, **like.guidance)
    return [reply for m in messages for reply in drafter.sweep(m).values()]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="a reply model with a LoRA adapter (default: the default)")
    parser.add_argument("--quick", action="store_true", help="two messages, few repeats (smoke test)")
    args = parser.parse_args(argv)
    repeat = 3 if args.quick else 20
    drafter = ReplyDrafter.from_pretrained(args.model)  # with the folder's guidance settings
    if not hasattr(drafter.model, "merge_and_unload"):
        raise SystemExit(f"{drafter.name} has no LoRA adapter: this benchmark compares a merged chat model.")
    merged = drafter.model.merge_and_unload()  # (the drafter is not used again)
    messages = app.EXAMPLE_MESSAGES[:2] if args.quick else app.EXAMPLE_MESSAGES
    prompts = [drafter.prompt(m, e)[0] for m in messages for e in EMOTIONS]
    batch = dict(drafter.tokenizer(prompts, add_special_tokens=False, padding=True, return_tensors="pt"))
    reference = next_token_logprobs(merged, batch)
    vocab = merged.config.vocab_size
    rows = [{"name": "fp32, adapter merged (reference)", **step_time(merged, vocab, repeat), "baseline": True}]
    base_ms = rows[0]["median_ms"]
    reference_drafts = drafts(merged, drafter, messages)
    for name, build in variants(merged, LAYER_TYPES[-1:] if args.quick else LAYER_TYPES).items():
        model = build()
        f = fidelity(reference, next_token_logprobs(model, batch))
        timing = step_time(model, vocab, repeat)
        note = f"KL {f['kl']:.3f} nats, same first token {f['top1']:.0%}"
        if " only" not in name:
            same = np.mean([a == b for a, b in zip(reference_drafts, drafts(model, drafter, messages), strict=True)])
            note += f", same draft {same:.0%} of {len(reference_drafts)}"
        rows.append({"name": name, **timing, "ratio": base_ms / timing["median_ms"], "note": note})
        del model
    title = f"int8 fidelity ({len(prompts)} prompts) and decoding step (batch 2), torch {torch.__version__}"
    out = table(rows, f"{title}, {torch.get_num_threads()} threads")
    print(out)
    return out


if __name__ == "__main__":
    main()
