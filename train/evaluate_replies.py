"""Evaluate the reply drafter on DailyDialog test pairs: loss, emotion, controllability, diversity, copying, BLEU.

    python train/evaluate_replies.py --model runs/reply-t5 --judge runs/reply-judge --update_card
    python train/evaluate_replies.py --model runs/reply-t5 --judge runs/reply-judge --base_model none \
        --max_eval_samples 200 --max_sweep_samples 50                                    # smoke
    python train/evaluate_replies.py --model runs/reply-t5 --judge runs/reply-judge --precision int8  # its cost

Rows: the fine-tuned model; the same model with the emotion removed from the prompt (does the
emotion matter?); the base model with the same prompt string, when it can be loaded.

- loss / perplexity: teacher-forced token cross-entropy on the reference reply (padding excluded);
  only comparable between rows that share a tokenizer.
- emotion accuracy: the judge's reading of the generated reply == the reference reply's emotion
  (the emotion requested in the prompt); also on non-neutral references only.
- controllability: the first ``--max_sweep_samples`` contexts x 7 requested emotions; share of
  replies the judge reads as the requested emotion, per emotion and averaged over the seven.
- distinct-1/2: unique / all word n-grams over all replies.
- copy rate: see ``emoreply.reply.metrics.is_copy`` (identical words, or a reply of >= 3 words of
  which >= 80% occur in the message).
- BLEU: sacrebleu corpus BLEU against the single reference reply.
Greedy decoding (no repeated 3-grams), at most ``--max_new_tokens`` new tokens, inputs truncated to 50 tokens;
the copy guard (a greedy reply that repeats its message is replaced by the best of 4 beams that does not)
is on, as in the app, unless ``--no_copy_guard``.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import sacrebleu
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from emoreply.emotion_cnn import EMOTIONS
from emoreply.reply.card import results_table, write_reply_card
from emoreply.reply.data import load_pairs, make_collator, tokenize_pairs
from emoreply.reply.drafter import (
    DEFAULT_BASE_MODEL_ID,
    DEFAULT_REPLY_MODEL_PATH,
    MAX_NEW_TOKENS,
    PRECISIONS,
    ReplyDrafter,
)
from emoreply.reply.judge import EmotionJudge
from emoreply.reply.metrics import COPY_MIN_WORDS, COPY_OVERLAP, copy_rate, corpus_loss, distinct_n, words

logger = logging.getLogger("evaluate_replies")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(DEFAULT_REPLY_MODEL_PATH), help="fine-tuned model folder or Hub id")
    parser.add_argument("--base_model", default=DEFAULT_BASE_MODEL_ID, help="'none' skips the base row")
    parser.add_argument("--judge", default="runs/reply-judge", help="folder written by train/train_judge.py")
    parser.add_argument("--dataset", default="../shared/data/dailydialog", help="jsonl folder or Hub dataset id")
    parser.add_argument("--split", default="test")
    parser.add_argument("--context_turns", type=int, help="default: the model's training_args.json, else 1")
    parser.add_argument("--max_eval_samples", type=int, help="cap test pairs")
    parser.add_argument("--max_sweep_samples", type=int, default=1000, help="contexts for the 7-emotion sweep")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--max_new_tokens", type=int, default=MAX_NEW_TOKENS)
    parser.add_argument("--output_dir", help="where eval_results.json/.md go (default: the model folder)")
    parser.add_argument("--update_card", action="store_true", help="rewrite the model folder's README.md")
    parser.add_argument(
        "--precision", choices=PRECISIONS, default="fp32", help="the T5s' weight format (bf16/int8: their quality cost)"
    )
    parser.add_argument("--no_copy_guard", action="store_true", help="score raw greedy replies, copies included")
    parser.add_argument("--num_examples", type=int, default=10, help="sample replies kept in the JSON")
    parser.add_argument("--no_progress", action="store_true")
    args = parser.parse_args(argv)
    if args.precision != "fp32" and args.update_card:
        parser.error(f"--precision {args.precision} evaluates a variant; it must not rewrite the fp32 model's card")
    return args


def score_row(
    drafter: ReplyDrafter,
    judge: EmotionJudge,
    pairs,
    prompts: list[str],
    sweep_prompts: list[str] | None,
    base: bool,
    args: argparse.Namespace,
) -> tuple[dict, list[str]]:
    """All metrics for one model variant; returns (metrics, replies)."""
    model, tokenizer = (drafter.base_model, drafter.base_tokenizer) if base else (drafter.model, drafter.tokenizer)
    tokenized = tokenize_pairs(
        pairs.add_column("row_prompt", prompts), tokenizer, drafter.max_source_tokens, prompt_column="row_prompt"
    )
    loss = corpus_loss(model, DataLoader(tokenized, batch_size=args.batch_size, collate_fn=make_collator(tokenizer)))
    contexts = list(pairs["context"])
    replies = [c[0] for c in _generate(drafter, prompts, contexts, base, args, "replies")]
    references, emotions = list(pairs["response"]), list(pairs["emotion"])
    judged = np.asarray(judge.predict(replies))
    hit = judged == np.asarray(emotions)
    emotional = np.asarray(emotions) != "neutral"
    row = {
        "loss": loss["loss"],
        "perplexity": loss["perplexity"],
        "emotion_accuracy": float(hit.mean()) if len(hit) else None,
        "emotion_accuracy_non_neutral": float(hit[emotional].mean()) if emotional.any() else None,
        "judged_distribution": {e: float((judged == e).mean()) for e in EMOTIONS} if len(judged) else {},
        "controllability": None,
        "controllability_per_emotion": None,
        "distinct_1": distinct_n(replies, 1),
        "distinct_2": distinct_n(replies, 2),
        "copy_rate": copy_rate(replies, list(pairs["context"])),
        "bleu": sacrebleu.corpus_bleu(replies, [references]).score,
        "mean_reply_words": float(np.mean([len(words(r)) for r in replies])) if replies else 0.0,
        "empty_reply_rate": float(np.mean([not r for r in replies])) if replies else 0.0,
    }
    if sweep_prompts:
        swept_contexts = [c for c in contexts[: len(sweep_prompts) // len(EMOTIONS)] for _ in EMOTIONS]
        swept_replies = [c[0] for c in _generate(drafter, sweep_prompts, swept_contexts, base, args, "sweep")]
        swept = np.asarray(judge.predict(swept_replies))
        requested = np.asarray(list(EMOTIONS) * (len(sweep_prompts) // len(EMOTIONS)))
        per = {e: float((swept[requested == e] == e).mean()) for e in EMOTIONS}
        row["controllability_per_emotion"] = per
        row["controllability"] = float(np.mean(list(per.values())))
    return row, replies


def _generate(
    drafter: ReplyDrafter, prompts: list[str], messages: list[str], base: bool, args: argparse.Namespace, what: str
) -> list[list[str]]:
    out = []
    for start in tqdm(range(0, len(prompts), args.batch_size), desc=what, leave=False, disable=args.no_progress):
        end = start + args.batch_size
        out += drafter.generate(prompts[start:end], base=base, batch_size=args.batch_size, messages=messages[start:end])
    return out


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args = parse_args(argv)
    base_name = None if args.base_model.lower() == "none" else args.base_model
    drafter = ReplyDrafter.from_pretrained(
        args.model, base_model=base_name, max_new_tokens=args.max_new_tokens, precision=args.precision
    )
    drafter.avoid_copies = not args.no_copy_guard
    if drafter.base_error:
        logger.warning("%s", drafter.base_error)
    judge = EmotionJudge.load(args.judge)
    model_dir = Path(args.model) if Path(args.model).is_dir() else None
    turns = args.context_turns
    if turns is None:
        trained = model_dir / "training_args.json" if model_dir else None
        turns = json.loads(trained.read_text()).get("context_turns", 1) if trained and trained.exists() else 1

    pairs = load_pairs(args.dataset, args.split, turns, args.max_eval_samples, tokenizer=drafter.tokenizer)
    plain = load_pairs(
        args.dataset, args.split, turns, args.max_eval_samples, with_emotion=False, tokenizer=drafter.tokenizer
    )
    n_sweep = min(args.max_sweep_samples, len(pairs))
    sweep = [
        drafter.prompt(c, e, h)[0]
        for c, h in zip(pairs["context"][:n_sweep], pairs["history"][:n_sweep], strict=True)
        for e in EMOTIONS
    ]

    rows, examples = {}, {}
    variants = [("fine_tuned", list(pairs["prompt"]), sweep, False), ("no_emotion", list(plain["prompt"]), None, False)]
    if drafter.base_model is not None:
        variants.append(("base", list(pairs["prompt"]), sweep, True))
    for key, prompts, sweep_prompts, base in variants:
        logger.info("scoring %s on %d pairs", key, len(prompts))
        rows[key], replies = score_row(drafter, judge, pairs, prompts, sweep_prompts, base, args)
        examples[key] = replies[: args.num_examples]

    references = list(pairs["response"])
    reference_hits = np.asarray(judge.predict(references)) == np.asarray(pairs["emotion"])
    results = {
        "model": args.model,
        "base_model": base_name,
        "base_error": drafter.base_error,
        "split": args.split,
        "num_pairs": len(pairs),
        "num_sweep_contexts": n_sweep,
        "context_turns": turns,
        "max_new_tokens": args.max_new_tokens,
        "no_repeat_ngram_size": drafter.no_repeat_ngram_size,
        "copy_guard": drafter.avoid_copies,
        "reference_copy_rate": copy_rate(references, list(pairs["context"])),  # how often people do it
        "precision": args.precision,
        "judge": {
            "path": args.judge,
            "accuracy": judge.metrics.get("accuracy"),
            "macro_f1": judge.metrics.get("macro_f1"),
            "reference_accuracy": float(reference_hits.mean()) if len(references) else None,
        },
        "copy_definition": f"identical words, or >= {COPY_OVERLAP:.0%} of a reply of >= {COPY_MIN_WORDS} words "
        "occurring in the message",
        "rows": rows,
        "examples": {
            "context": list(pairs["context"][: args.num_examples]),
            "emotion": list(pairs["emotion"][: args.num_examples]),
            "reference": references[: args.num_examples],
            **examples,
        },
    }
    variant = Path("runs") / f"reply-eval-{args.precision}" if args.precision != "fp32" else None
    default_out = variant or model_dir or Path("runs") / "reply-eval"
    out = Path(args.output_dir) if args.output_dir else default_out
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval_results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    table = results_table(results)
    (out / "eval_results.md").write_text(f"# Reply evaluation ({args.split}, {len(pairs)} pairs)\n\n{table}\n")
    print(table)
    if args.update_card and model_dir:
        if out.resolve() != model_dir.resolve():
            (model_dir / "eval_results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        write_reply_card(model_dir)
    return results


if __name__ == "__main__":
    main()
