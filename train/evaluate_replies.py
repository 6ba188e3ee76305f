"""Evaluate reply models on DailyDialog test pairs: relevance, emotion, controllability, diversity, copying.

    python train/evaluate_replies.py --judge runs/reply-judge --update_card          # the default responder
    python train/evaluate_replies.py --model t5 --judge runs/reply-judge --compare none --update_card
    python train/evaluate_replies.py --judge runs/reply-judge --max_eval_samples 64 --max_sweep_samples 8 \
        --relevance_contexts 16 --relevance_set_size 8                                           # smoke

Rows (one table): the fine-tuned model (with the guidance settings its folder stores, or
``--emotion_guidance``, ``--context_contrast``, ``--plausibility``); the same model without guidance,
when it has any (what guidance adds); the same model with the emotion removed from the prompt (does
the emotion matter?); its base model asked for the emotion through the same prompt (for a LoRA
adapter: the same weights, adapter off); the models named by ``--compare`` (default: the bundled
compact T5); and the human reference replies, the ceiling for relevance and diversity.

- relevance: the first ``--relevance_contexts`` dialogue openings (each dialogue's first pair) in
  sets of ``--relevance_set_size``. For each reply in a set, every context of the set is scored by
  log p(reply | context) under a scorer LM that is not a model being evaluated (the pretrained
  SmolLM2 base, no adapter, no emotion in its prompt). top-1: the reply's own context is the most
  likely one; PMI: log p(reply | own context) - log mean p(reply | any context of the set), in
  nats. A stock phrase scores top-1 ~ 1/N, PMI ~ 0. Scored for the replies at the reference's
  emotion and, per requested emotion, for the sweep (does a reply in *that* emotion still answer
  its message?); each also as a share of the references' (the ceiling).
- perplexity per word: teacher-forced cross-entropy of the reference reply, summed over its tokens
  and divided by its words (tokenizers differ, so per-token perplexities are not comparable).
- emotion accuracy: the judge's reading of the reply == the reference reply's emotion (the emotion
  requested); also on non-neutral references only.
- controllability: the first ``--max_sweep_samples`` dialogue openings x 7 requested emotions;
  share of replies the judge reads as the requested emotion, per emotion and averaged over the
  seven. With ``--max_sweep_samples`` = ``--relevance_contexts`` the sweep answers the same
  messages the references' relevance is scored on.
- distinct-1/2, copy rate (``emoreply.reply.copy_guard.is_copy``), sacrebleu BLEU against the reference.
- blocked words: share of replies (and of sweep replies) holding a threat or insult that
  ``emoreply.reply.blocklist`` bans while decoding (a banned word can still slip through in a
  spelling the ban does not cover).
Greedy decoding (no repeated 3-grams, at most ``--max_new_tokens`` new tokens) with the app's copy
guard, as in the app, unless ``--no_copy_guard``.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
from pathlib import Path

import numpy as np
import sacrebleu
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from emoreply.constants import COPY_MIN_WORDS, COPY_OVERLAP
from emoreply.emotion_cnn import EMOTIONS
from emoreply.reply.base import base_model_folder
from emoreply.reply.blocklist import BLOCKED_PHRASES, contains_blocked
from emoreply.reply.copy_guard import words
from emoreply.reply.drafter import (
    DEFAULT_REPLY_MODEL,
    GUIDANCE_KEYS,
    MAX_NEW_TOKENS,
    PRECISIONS,
    ReplyDrafter,
    load_reply_model,
    resolve_reply_model,
)
from emoreply.reply.prompt import format_prompt
from emoreply.training.cards import results_table, write_reply_card
from emoreply.training.data_sources import add_dataset_arg
from emoreply.training.judge import EmotionJudge
from emoreply.training.reply_data import load_pairs, make_collator, tokenize_pairs
from emoreply.training.reply_metrics import copy_rate, distinct_n, relevance, reply_logprobs, token_losses

logger = logging.getLogger("evaluate_replies")
SKIPPABLE = ("no_guidance", "no_emotion", "base")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_REPLY_MODEL, help="smollm2 | t5 (bundled), or a folder / Hub id")
    parser.add_argument("--base_model", help="base of a full (non-adapter) model; 'none' skips the base row")
    parser.add_argument("--compare", nargs="*", default=["t5"], help="more reply models to score ('none': no more)")
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=SKIPPABLE, help="rows to leave out (e.g. for a quick first sitting)"
    )
    parser.add_argument("--scorer", help="causal LM scoring relevance (default: the SmolLM2 base)")
    parser.add_argument("--judge", default="runs/reply-judge", help="folder written by train/train_judge.py")
    add_dataset_arg(parser, "dailydialog")
    parser.add_argument("--split", default="test")
    parser.add_argument("--max_eval_samples", type=int, help="cap test pairs (the first N)")
    parser.add_argument("--max_sweep_samples", type=int, default=100, help="dialogue openings for the 7-emotion sweep")
    parser.add_argument("--relevance_contexts", type=int, default=100, help="dialogue openings scored for relevance")
    parser.add_argument("--relevance_set_size", type=int, default=10, help="N: contexts each reply is ranked among")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--max_new_tokens", type=int, default=MAX_NEW_TOKENS)
    parser.add_argument("--output_dir", help="where eval_results.json/.md go (default: the model folder)")
    parser.add_argument(
        "--replies_dir",
        help="keep each row's generated replies here (JSON lines) and resume from them: a long evaluation "
        "may be run in several sittings; a cached reply is reused only for the same message, emotion and settings",
    )
    parser.add_argument("--update_card", action="store_true", help="rewrite the model folder's README.md")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32", help="weights of the evaluated models")
    parser.add_argument("--no_copy_guard", action="store_true", help="score raw greedy replies, copies included")
    parser.add_argument("--emotion_guidance", type=float, help="guidance scale (default: the model folder's)")
    parser.add_argument("--context_contrast", type=float, help="context contrast scale (default: the folder's)")
    parser.add_argument("--plausibility", type=float, help="guided tokens' probability floor (default: the folder's)")
    parser.add_argument("--num_examples", type=int, default=10, help="sample replies kept in the JSON")
    parser.add_argument("--no_progress", action="store_true")
    args = parser.parse_args(argv)
    if args.relevance_contexts and args.relevance_contexts < args.relevance_set_size:
        parser.error("--relevance_contexts must hold at least one set of --relevance_set_size")
    if args.precision != "fp32" and args.update_card:
        parser.error(f"--precision {args.precision} evaluates a variant; it must not rewrite the fp32 model's card")
    for key in GUIDANCE_KEYS:
        if getattr(args, key) is not None and args.update_card:
            parser.error(f"--{key} evaluates a variant; store the setting in the model folder to card it")
    return args


def job_key(job: tuple[str, str | None, list[str]]) -> str:
    """A (message, emotion, history) job as the JSON text that keys its cached reply."""
    message, emotion, history = job
    return json.dumps([message, emotion, list(history)], ensure_ascii=False)


def cached_replies(path: Path, settings: dict) -> dict[str, str]:
    """Job key -> reply, for the replies ``path`` holds under the same ``settings`` (none if they differ);
    the file is rewritten to hold just those, ready for more lines."""
    lines = path.read_text().splitlines() if path.is_file() else []
    kept: dict[str, str] = {}
    if lines and json.loads(lines[0]) == settings:
        for line in lines[1:]:
            try:
                record = json.loads(line)
            except ValueError:  # a line cut short when an earlier sitting was stopped
                break
            kept[job_key(record["job"])] = record["reply"]
    path.parent.mkdir(parents=True, exist_ok=True)
    records = [{"job": json.loads(key), "reply": reply} for key, reply in kept.items()]
    path.write_text("".join(json.dumps(r) + "\n" for r in [settings, *records]))
    return kept


def generate(drafter: ReplyDrafter, jobs: list[tuple[str, str | None, list[str]]], args, what: str) -> list[str]:
    """Greedy replies to (message, emotion, history) jobs, with the copy guard and the drafter's emotion
    guidance, as in the app; with ``--replies_dir``, cached under ``what`` and resumed.

    Jobs are drafted in batches of similar prompt length: a batch is padded to its longest prompt,
    and at evaluation batch sizes decoding is bound by arithmetic, so padding costs time.
    """
    prompts = [drafter.prompt(m, e, h)[0] for m, e, h in jobs]
    guides = [drafter.guide(m, e, h) for m, e, h in jobs]
    keys = [job_key(job) for job in jobs]
    done: dict[str, str] = {}
    cache = Path(args.replies_dir) / f"{what}.jsonl" if args.replies_dir else None
    if cache is not None:
        settings = {
            "model": drafter.name,
            "adapter": drafter.use_adapter,
            "emotion_guidance": drafter.emotion_guidance,
            "max_new_tokens": drafter.max_new_tokens,
            "no_repeat_ngram_size": drafter.no_repeat_ngram_size,
            "copy_guard": drafter.avoid_copies,
            "precision": args.precision,
            "blocked_words": list(BLOCKED_PHRASES),
        }
        # Only when on: replies cached before these settings existed were drafted with both off.
        settings.update({k: getattr(drafter, k) for k in ("context_contrast", "plausibility") if getattr(drafter, k)})
        done = cached_replies(cache, settings)
    first = {}  # one job per key, in the order of ``jobs``
    for i, key in enumerate(keys):
        if key not in done:
            first.setdefault(key, i)
    todo = sorted(first.values(), key=lambda i: len(prompts[i]))
    for start in tqdm(range(0, len(todo), args.batch_size), desc=what, leave=False, disable=args.no_progress):
        batch = todo[start : start + args.batch_size]
        replies = drafter.generate(
            [prompts[i] for i in batch],
            batch_size=args.batch_size,
            messages=[jobs[i][0] for i in batch],
            guides=[guides[i] for i in batch],
        )
        done.update((keys[i], c[0]) for i, c in zip(batch, replies, strict=True))
        if cache is not None:  # appended batch by batch: a stopped sitting loses one batch at most
            with cache.open("a") as f:
                f.writelines(json.dumps({"job": json.loads(keys[i]), "reply": done[keys[i]]}) + "\n" for i in batch)
    return [done[key] for key in keys]


def loss_per_word(drafter: ReplyDrafter, pairs, with_emotion: bool, args) -> dict[str, float]:
    """Teacher-forced loss of the reference replies: nats per token and per word, and per-word perplexity."""
    prompts = [
        drafter.prompt(c, e if with_emotion else None, h)[0]
        for c, e, h in zip(pairs["context"], pairs["emotion"], pairs["history"], strict=True)
    ]
    tokenized = tokenize_pairs(
        pairs.add_column("row_prompt", prompts),
        drafter.tokenizer,
        drafter.max_source_tokens,
        prompt_column="row_prompt",
    )
    loader = DataLoader(tokenized, batch_size=args.batch_size, collate_fn=make_collator(drafter.tokenizer))
    total, tokens = 0.0, 0
    with drafter.lock, torch.inference_mode():
        for batch in tqdm(loader, desc="loss", leave=False, disable=args.no_progress):
            batch = {k: v.to(drafter.model.device) for k, v in batch.items()}
            if not drafter.use_adapter:  # the base: the same weights with the adapter off
                with drafter.model.disable_adapter():
                    nll, n = token_losses(drafter.model, batch)
            else:
                nll, n = token_losses(drafter.model, batch)
            total, tokens = total + nll.sum().item(), tokens + int(n.sum())
    n_words = sum(len(words(r)) for r in pairs["response"])
    return {
        "loss_per_token": total / max(tokens, 1),
        "perplexity_per_word": math.exp(min(total / max(n_words, 1), 50.0)),
    }


def openings(pairs) -> list[int]:
    """Indices of each dialogue's first pair: one message per conversation, with no history before it.

    Within a dialogue the reference reply of one pair is the message of the next, and a scorer finds
    a text most likely after itself: two pairs of one dialogue in a relevance set would be ranked by
    that echo. The sweep uses openings too, so its contexts are as many different conversations.
    """
    contexts, responses = pairs["context"], pairs["response"]
    return [i for i in range(len(pairs)) if i == 0 or contexts[i] != responses[i - 1]]


def relevance_pairs(pairs, args) -> list[int]:
    """Indices of the pairs scored for relevance: the first openings, in whole sets."""
    first = openings(pairs)
    n = min(args.relevance_contexts, len(first)) // args.relevance_set_size * args.relevance_set_size
    return first[:n]


def sweep_pairs(pairs, args) -> list[int]:
    """Indices of the pairs whose messages the 7-emotion sweep answers: the first openings."""
    return openings(pairs)[: args.max_sweep_samples]


def relevance_scores(scorer, tokenizer, contexts: list[str], replies: dict, args) -> dict:
    """Top-1 identification and PMI (see the module docstring) of each reply list in ``replies``, whose
    i-th reply answers ``contexts[i]`` (an opening: no history), averaged over whole sets of
    ``--relevance_set_size`` contexts."""
    size = args.relevance_set_size
    keys = list(replies)
    per_key: dict = {k: [] for k in keys}
    for start in tqdm(range(0, len(contexts) // size * size, size), desc="relevance", disable=args.no_progress):
        window = range(start, start + size)
        prompts = [format_prompt(contexts[i], None, [], tokenizer) for i in window]
        # One pass per context for every list: the lists' replies share the context's key/value cache.
        rows = [[replies[k][j] for k in keys for j in window] for _ in window]
        scores = reply_logprobs(scorer, tokenizer, prompts, rows)  # (size, len(keys) * size)
        for r, key in enumerate(keys):
            block = scores[:, r * size : (r + 1) * size]
            per_key[key].append(relevance(block, [not replies[key][j].strip() for j in window]))
    return {k: {m: float(np.mean([s[m] for s in v])) for m in ("top1", "pmi")} for k, v in per_key.items()}


def add_relevance(results_rows: dict, replies: dict, sweeps: dict, pairs, args) -> None:
    """Relevance of every row at the reference emotion, of every sweep per requested emotion, and each
    row's share of the references' (the ceiling), into ``results_rows``."""
    scorer, tokenizer = load_reply_model(args.scorer or base_model_folder(), "relevance scorer")
    scorer.eval()
    chosen = relevance_pairs(pairs, args)
    contexts = [pairs["context"][i] for i in chosen]
    at_reference = {k: [v[i] for i in chosen] for k, v in replies.items()}
    for key, rel in relevance_scores(scorer, tokenizer, contexts, at_reference, args).items():
        results_rows[key].update(relevance_top1=rel["top1"], relevance_pmi=rel["pmi"])
    swept = [pairs["context"][i] for i in sweep_pairs(pairs, args)]
    per_emotion = {  # (row, emotion) -> its sweep replies, in the order of ``swept``
        (key, e): sweep[k :: len(EMOTIONS)] for key, sweep in sweeps.items() for k, e in enumerate(EMOTIONS)
    }
    if per_emotion and len(swept) >= args.relevance_set_size:
        scored = relevance_scores(scorer, tokenizer, swept, per_emotion, args)
        for key in sweeps:
            rels = {e: scored[key, e] for e in EMOTIONS}
            results_rows[key].update(
                sweep_relevance_top1=float(np.mean([r["top1"] for r in rels.values()])),
                sweep_relevance_pmi=float(np.mean([r["pmi"] for r in rels.values()])),
                sweep_relevance_per_emotion={e: r["top1"] for e, r in rels.items()},
            )
    ref = results_rows["references"]
    for row in results_rows.values():
        for metric in ("relevance_top1", "relevance_pmi", "sweep_relevance_top1", "sweep_relevance_pmi"):
            if row.get(metric) is not None:
                reference = ref[metric.removeprefix("sweep_")]
                row[f"{metric}_vs_references"] = row[metric] / reference if reference else None


def score_row(
    key: str,
    drafter: ReplyDrafter | None,
    judge: EmotionJudge,
    pairs,
    replies: list[str],
    with_emotion: bool,
    args,
) -> tuple[dict, list[str]]:
    """All metrics of one row but relevance, and its sweep replies (message-major, 7 per message;
    empty without a sweep); ``drafter`` None: the human references."""
    emotions = np.asarray(pairs["emotion"])
    judged = np.asarray(judge.predict(replies))
    hit = judged == emotions
    emotional = emotions != "neutral"
    row: dict = {
        "emotion_accuracy": float(hit.mean()),
        "emotion_accuracy_non_neutral": float(hit[emotional].mean()) if emotional.any() else None,
        "distinct_1": distinct_n(replies, 1),
        "distinct_2": distinct_n(replies, 2),
        "copy_rate": copy_rate(replies, list(pairs["context"])),
        "blocked_rate": float(np.mean([contains_blocked(r) for r in replies])),
        "mean_reply_words": float(np.mean([len(words(r)) for r in replies])),
        "empty_reply_rate": float(np.mean([not r.strip() for r in replies])),
        "controllability": None,
        "controllability_per_emotion": None,
        "sweep_blocked_rate": None,
    }
    if drafter is None:
        return row, []
    row["bleu"] = sacrebleu.corpus_bleu(replies, [list(pairs["response"])]).score
    row.update(loss_per_word(drafter, pairs, with_emotion, args))
    sweep: list[str] = []
    if with_emotion and args.max_sweep_samples:
        jobs = [(pairs["context"][i], e, pairs["history"][i]) for i in sweep_pairs(pairs, args) for e in EMOTIONS]
        sweep = generate(drafter, jobs, args, f"{key}-sweep")
        swept = np.asarray(judge.predict(sweep))
        requested = np.asarray([e for _, e, _ in jobs])
        per = {e: float((swept[requested == e] == e).mean()) for e in EMOTIONS}
        row.update(
            controllability=float(np.mean(list(per.values()))),
            controllability_per_emotion=per,
            sweep_blocked_rate=float(np.mean([contains_blocked(r) for r in sweep])),
        )
    return row, sweep


def load_rows(args: argparse.Namespace) -> dict[str, tuple[ReplyDrafter, bool]]:
    """Row key -> (drafter, whether its prompt carries the emotion)."""
    tuned = ReplyDrafter.from_pretrained(args.model, max_new_tokens=args.max_new_tokens, precision=args.precision)
    tuned.avoid_copies = not args.no_copy_guard
    for key in GUIDANCE_KEYS:
        if getattr(args, key) is not None:
            setattr(tuned, key, getattr(args, key))
    rows = {"fine_tuned": (tuned, True)}
    if tuned.emotion_guidance and "no_guidance" not in args.skip:
        plain = copy.copy(tuned)  # the same model and lock, plain greedy decoding
        plain.emotion_guidance = 0.0
        rows["no_guidance"] = (plain, True)
    if "no_emotion" not in args.skip:
        rows["no_emotion"] = (tuned, False)
    if (args.base_model or "").lower() != "none" and "base" not in args.skip:
        try:
            rows["base"] = (tuned.base_drafter(args.base_model), True)
        except Exception as err:  # offline without the base: the other rows still count
            logger.warning("no base row: %s", err)
    for name in args.compare:
        if name.lower() == "none":
            continue
        other = ReplyDrafter.from_pretrained(name, max_new_tokens=args.max_new_tokens, precision=args.precision)
        other.avoid_copies = not args.no_copy_guard
        rows[name] = (other, True)
    return rows


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args = parse_args(argv)
    judge = EmotionJudge.load(args.judge)
    rows = load_rows(args)
    pairs = load_pairs(args.dataset, args.split, 1, args.max_eval_samples)
    jobs = list(zip(pairs["context"], pairs["emotion"], pairs["history"], strict=True))

    replies: dict[str, list[str]] = {"references": list(pairs["response"])}
    sweeps: dict[str, list[str]] = {}
    results_rows: dict[str, dict] = {}
    for key, (drafter, with_emotion) in rows.items():
        logger.info("scoring %s (%s) on %d pairs", key, drafter.name, len(pairs))
        row_jobs = [(m, e if with_emotion else None, h) for m, e, h in jobs]
        replies[key] = generate(drafter, row_jobs, args, key)
        row, sweep = score_row(key, drafter, judge, pairs, replies[key], with_emotion, args)
        results_rows[key] = {"model": drafter.name, **row}
        if sweep:
            sweeps[key] = sweep
    references = score_row("references", None, judge, pairs, replies["references"], True, args)[0]
    results_rows["references"] = {"model": "human", **references}

    if args.relevance_contexts and not relevance_pairs(pairs, args):
        logger.warning("relevance not scored: fewer dialogues than --relevance_set_size among the pairs")
    elif args.relevance_contexts:
        add_relevance(results_rows, replies, sweeps, pairs, args)

    tuned = rows["fine_tuned"][0]
    results = {
        "model": tuned.name,
        "split": args.split,
        "num_pairs": len(pairs),
        "num_sweep_contexts": len(sweep_pairs(pairs, args)),
        "relevance_contexts": len(relevance_pairs(pairs, args)) if args.relevance_contexts else 0,
        "relevance_set_size": args.relevance_set_size,
        "relevance_scorer": str(args.scorer or "HuggingFaceTB/SmolLM2-135M-Instruct (no adapter)"),
        "max_new_tokens": args.max_new_tokens,
        "no_repeat_ngram_size": tuned.no_repeat_ngram_size,
        **tuned.guidance,
        "copy_guard": tuned.avoid_copies,
        "precision": args.precision,
        "judge": {
            "path": args.judge,
            "accuracy": judge.metrics.get("accuracy"),
            "macro_f1": judge.metrics.get("macro_f1"),
        },
        "copy_definition": f"identical words, or >= {COPY_OVERLAP:.0%} of a reply of >= {COPY_MIN_WORDS} words "
        "occurring in the message",
        "rows": results_rows,
        "examples": {
            "context": list(pairs["context"][: args.num_examples]),
            "emotion": list(pairs["emotion"][: args.num_examples]),
            **{k: v[: args.num_examples] for k, v in replies.items()},
        },
    }
    model_dir = Path(resolve_reply_model(args.model))
    model_dir = model_dir if model_dir.is_dir() else None
    variant = Path("runs") / f"reply-eval-{args.precision}" if args.precision != "fp32" else None
    out = Path(args.output_dir) if args.output_dir else variant or model_dir or Path("runs") / "reply-eval"
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
