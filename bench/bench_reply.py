"""Reply drafter speed: one reply (fp32, int8, bf16), a 7-emotion sweep, and training throughput.

    python -m bench.bench_reply [--model smollm2] [--quick]

Every variant is loaded as the app loads it (``ReplyDrafter.from_pretrained(precision=...)``: on
CPU its fp32 linear layers are ``FewRowsLinear``), plus fp32 with transformers' own ``nn.Linear``
layers to show what that buys (``bench.bench_linear_rows`` times the layers alone), and
for a LoRA adapter fp32 with the adapter merged into the weights (what keeping it separate costs;
the app keeps it separate so that the base model shares its weights). A model that stores an emotion
guidance scale drafts as the app does, each reply with its emotion-free twin row in the same batch
(``emoreply.reply.drafter.EmotionGuidance``); "fp32, no emotion guidance" shows what the twins cost.

For the default responder (SmolLM2-135M-Instruct + LoRA, at its natural reply lengths, and forced
to exactly 20 new tokens so that a sweep and one reply do the same number of decoding steps), the
compact T5 and a t5-small-sized model. A batched sweep decodes until its longest reply ends, so
"one reply" is the longest of the seven; the sweep's note also compares it with the mean of the
seven replies drafted one by one. The t5-small-sized model has random weights (the real ones need
the Hub) and is forced to generate exactly 20 new tokens. Training throughput uses DailyDialog's
mean lengths (23 prompt tokens, 14 reply tokens with the project tokenizer) in batches of 32.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
from pathlib import Path

import torch

import app
from bench.common import measure, table
from emoreply.reply import DEFAULT_REPLY_MODEL, PRECISIONS, ReplyDrafter
from emoreply.reply.drafter import Guide, for_decoding, load_reply_model, resolve_reply_model

MESSAGE = "How is your day going? I heard you had a job interview this morning."
T5_TOKENIZER = "../shared/models/t5-small-tokenizer"  # t5-small's tokenizer, saved offline (--t5_tokenizer)
PLAIN = "fp32, nn.Linear"  # as transformers loads it, before emoreply.reply.cpu_layout
MERGED = "fp32, adapter merged"  # LoRA folded into the base weights: no adapter layers at run time
UNGUIDED = "fp32, no emotion guidance"  # what the emotion-free twin rows of EmotionGuidance cost


def t5_small_sized_folder(tokenizer_dir: str, folder: Path, min_new_tokens: int | None = None) -> str:
    """google-t5/t5-small's shape (60.5M parameters, 32k vocabulary) with random weights, saved to ``folder``.

    ``min_new_tokens`` goes into its generation config (every reply that long, whatever the weights).
    """
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    config = T5Config(
        vocab_size=32128,
        d_model=512,
        d_kv=64,
        d_ff=2048,
        num_layers=6,
        num_heads=8,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    model = T5ForConditionalGeneration(config)
    model.generation_config.min_new_tokens = min_new_tokens
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(folder)
    return str(folder)


def variants(folder: str) -> dict[str, ReplyDrafter]:
    """The drafter as the app loads it in each precision, in fp32 with transformers' own ``nn.Linear``s,
    for a LoRA adapter in fp32 with the adapter merged into the weights, and (for a model that stores
    an emotion guidance scale) in fp32 without guidance. All but the last guide as the app does."""
    drafters = {p: ReplyDrafter.from_pretrained(folder, device="cpu", precision=p) for p in PRECISIONS}
    guidance = drafters["fp32"].guidance
    drafters[PLAIN] = ReplyDrafter(*load_reply_model(folder), **guidance)
    model, tokenizer = load_reply_model(folder)
    if hasattr(model, "merge_and_unload"):
        merged = for_decoding(model.merge_and_unload(), "fp32", torch.device("cpu"))
        drafters[MERGED] = ReplyDrafter(merged, tokenizer, **guidance)
    if guidance["emotion_guidance"]:
        drafters[UNGUIDED] = copy.copy(drafters["fp32"])
        drafters[UNGUIDED].emotion_guidance = 0.0
    return drafters


def jobs(drafter: ReplyDrafter, message: str) -> tuple[list[str], list[Guide | None]]:
    """The seven prompts for ``message`` and their guides (None where the drafter does not guide)."""
    return (
        [drafter.prompt(message, e)[0] for e in drafter.emotions],
        [drafter.guide(message, e) for e in drafter.emotions],
    )


def decoding_steps(drafter: ReplyDrafter, prompts: list[str], guides: list, fixed_length: bool) -> list[int]:
    """Decoding steps per prompt: the greedy reply's tokens + EOS (at fixed length, max_new_tokens)."""
    if fixed_length:
        return [drafter.max_new_tokens] * len(prompts)
    replies = drafter.generate(prompts, guides=guides)
    return [len(drafter.tokenizer(c[0], add_special_tokens=False)["input_ids"]) + 1 for c in replies]


def rows_for(
    name: str, drafters: dict[str, ReplyDrafter], repeat: int, fixed_length: bool, one_thread: bool = False
) -> list[dict]:
    """One reply per variant (with ``one_thread`` also fp32 and bf16 on 1 thread), and the fp32 sweep."""
    drafter = drafters["fp32"]
    # min_new_tokens pins the length: random weights then cost as much as a real 20-token reply, and
    # all seven replies of a sweep are as long as the one reply.
    extra = {"min_new_tokens": drafter.max_new_tokens} if fixed_length else {}
    prompts, guides = jobs(drafter, MESSAGE)
    steps = decoding_steps(drafter, prompts, guides, fixed_length)
    # A batched sweep decodes until its longest reply ends: the one reply it is compared with is that one.
    longest = steps.index(max(steps))
    one = measure(lambda: drafter.generate([prompts[longest]], guides=[guides[longest]], **extra), 3, repeat)
    rows = [
        {
            "name": f"{name}: one reply (greedy, {'20' if fixed_length else '≤20'} new tokens), fp32",
            **one,
            "baseline": True,
            "note": f"{steps[longest]} decoding steps ({drafter.emotions[longest]})"
            + (f", emotion guidance {g:g}" if (g := drafter.emotion_guidance) else "")
            + (f", context contrast {c:g}" if g and (c := drafter.context_contrast) else ""),
        }
    ]
    # One thread as fast as two means memory-bound: only fewer bytes per weight help, not more cores.
    threads = torch.get_num_threads()
    timed_variants = [(key, "") for key in drafters if key != "fp32"]
    timed_variants += [("fp32", ", 1 thread"), ("bf16", ", 1 thread")] if one_thread else []
    for key, label in timed_variants:
        variant = drafters[key]
        twin = [variant.guide(MESSAGE, drafter.emotions[longest])]
        torch.set_num_threads(1 if label else threads)
        timed = measure(lambda: variant.generate([prompts[longest]], guides=twin, **extra), 3, repeat)  # noqa: B023
        torch.set_num_threads(threads)
        rows.append(
            {"name": f"{name}: one reply, {key}{label}", **timed, "ratio": timed["median_ms"] / one["median_ms"]}
        )
    seven = measure(lambda: drafter.generate(prompts, batch_size=7, guides=guides, **extra), 2, max(3, repeat // 2))
    sequential = measure(
        lambda: [drafter.generate([p], guides=[u], **extra) for p, u in zip(prompts, guides, strict=True)],
        warmup=1,
        repeat=max(3, repeat // 4),
    )
    rows.append(
        {
            "name": f"{name}: 7-emotion sweep, one batched generate, fp32",
            **seven,
            "ratio": seven["median_ms"] / one["median_ms"],
            "note": f"{sequential['median_ms'] / seven['median_ms']:.1f}x faster than 7 calls, "
            f"{7 * seven['median_ms'] / sequential['median_ms']:.1f}x their mean; decoding steps {steps}",
        }
    )
    return rows


def sweep_ratios_row(name: str, drafter: ReplyDrafter, messages: list[str], repeat: int) -> dict:
    """Natural lengths over several messages: sweep time over (its longest reply; the mean of its 7 replies)."""
    vs_longest, vs_mean = [], []
    for message in messages:
        prompts, guides = jobs(drafter, message)
        seven = measure(lambda: drafter.generate(prompts, batch_size=7, guides=guides), 2, repeat)  # noqa: B023
        singles = [
            measure(lambda: drafter.generate([p], guides=[u]), warmup=1, repeat=repeat)["median_ms"]  # noqa: B023
            for p, u in zip(prompts, guides, strict=True)
        ]
        vs_longest.append(seven["median_ms"] / max(singles))
        vs_mean.append(seven["median_ms"] * len(singles) / sum(singles))
    return {
        "name": f"{name}: 7-emotion sweep at natural lengths, {len(messages)} messages (the app's examples)",
        "ratio": statistics.median(vs_longest),
        "note": f"÷ its longest reply alone: {min(vs_longest):.2f}–{max(vs_longest):.2f}x; "
        f"÷ the mean of its 7 replies alone: {min(vs_mean):.2f}–{max(vs_mean):.2f}x "
        f"(median {statistics.median(vs_mean):.2f}x)",
    }


def training_row(name: str, model, steps: int) -> dict:
    """One AdamW step on a batch of 32 pairs of DailyDialog's mean lengths; pairs/s in the note."""
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    vocab = model.config.vocab_size
    batch = {"input_ids": torch.randint(2, vocab, (32, 23)), "labels": torch.randint(2, vocab, (32, 14))}

    def step() -> None:
        model(**batch).loss.backward()
        opt.step()
        opt.zero_grad()

    r = measure(step, warmup=2, repeat=steps)
    model.eval()
    return {"name": f"{name}: training step, batch 32", **r, "note": f"{32 / r['median_ms'] * 1000:.0f} pairs/s"}


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=DEFAULT_REPLY_MODEL, help="smollm2 | t5 (bundled), or a folder")
    parser.add_argument(
        "--t5_tokenizer",
        default=T5_TOKENIZER,
        help="the real t5-small tokenizer (32k vocabulary) for the t5-small-sized model",
    )
    parser.add_argument("--quick", action="store_true", help="few repeats (smoke test)")
    parser.add_argument("--repeat", type=int, help="timed repeats per row (default 30; 3 with --quick)")
    parser.add_argument("--default_only", action="store_true", help="only the default responder's rows")
    args = parser.parse_args(argv)
    repeat = args.repeat or (3 if args.quick else 30)
    steps = 3 if args.quick else 20
    default = variants(str(resolve_reply_model(args.model)))
    rows = rows_for("default responder", default, repeat, fixed_length=False)
    rows += rows_for("default responder, fixed length", default, max(3, repeat // 2), fixed_length=True)
    if args.default_only:
        return _print(table(rows, _title(), ratio="time ÷ one fp32 reply"))
    rows.append(sweep_ratios_row("default responder", default["fp32"], app.EXAMPLE_MESSAGES, max(3, repeat // 3)))
    del default
    t5 = variants(str(resolve_reply_model("t5")))
    rows += rows_for("compact T5", t5, repeat, fixed_length=False)
    with tempfile.TemporaryDirectory() as tmp:
        sized = variants(t5_small_sized_folder(args.t5_tokenizer, Path(tmp)))
    rows += rows_for("t5-small-sized (random)", sized, max(3, repeat // 2), fixed_length=True, one_thread=True)
    rows.append(training_row("compact T5", t5[PLAIN].model, steps))  # trainable nn.Linear layers
    rows.append(training_row("t5-small-sized", sized[PLAIN].model, max(3, steps // 4)))
    return _print(table(rows, _title(), ratio="time ÷ one fp32 reply"))


def _title() -> str:
    return f"Reply drafter, torch {torch.__version__}, {torch.get_num_threads()} threads"


def _print(out: str) -> str:
    print(out)
    return out


if __name__ == "__main__":
    main()
