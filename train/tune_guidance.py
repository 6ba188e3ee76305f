"""Compare guidance settings on validation messages: controllability and distinct-2 of 7-emotion sweeps.

    python train/tune_guidance.py --judge runs/reply-judge --settings 1,0,0 1,0.5,0.1 2,0.5,0.1 2.5,0.5,0.1

Each setting is ``emotion_guidance,context_contrast,plausibility`` (see ``EmotionGuidance``). The
messages are the first utterances of validation dialogues ``--skip_dialogues`` to ``--skip_dialogues +
--num_dialogues``; by default not the 40 openings that ``evaluate_replies.py --split validation``
scores, so a setting chosen here is checked there on other messages. Relevance needs the scorer's
passes and is left to ``evaluate_replies.py``. Greedy decoding with the app's settings otherwise
(copy guard, blocked words). Prints a markdown table; ``--output`` also writes every draft as JSON.
To bundle a setting: ``save_decoding_settings`` (or ``train_reply.py --emotion_guidance ...``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from emoreply.emotion_cnn import EMOTIONS
from emoreply.reply import DEFAULT_REPLY_MODEL, ReplyDrafter, normalize_text
from emoreply.reply.drafter import GUIDANCE_KEYS
from emoreply.training.data_sources import add_dataset_arg
from emoreply.training.judge import EmotionJudge
from emoreply.training.reply_data import load_dialogues
from emoreply.training.reply_metrics import distinct_n


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_REPLY_MODEL, help="smollm2 | t5 (bundled), or a folder / Hub id")
    parser.add_argument("--judge", required=True, help="folder written by train/train_judge.py")
    add_dataset_arg(parser, "dailydialog")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--settings", nargs="+", required=True, help="emotion_guidance,context_contrast,plausibility")
    parser.add_argument("--skip_dialogues", type=int, default=40)
    parser.add_argument("--num_dialogues", type=int, default=24)
    parser.add_argument("--batch_size", type=int, default=56, help="prompts a generate call (8 messages x 7)")
    parser.add_argument("--output", help="JSON file for the drafts")
    args = parser.parse_args(argv)
    try:
        args.settings = [tuple(float(x) for x in s.split(",")) for s in args.settings]
    except ValueError:
        parser.error("--settings takes emotion_guidance,context_contrast,plausibility triples, e.g. 2,0.5,0.1")
    if any(len(s) != len(GUIDANCE_KEYS) for s in args.settings):
        parser.error("--settings takes three numbers each: emotion_guidance,context_contrast,plausibility")
    return args


def sweep_all(drafter: ReplyDrafter, messages: list[str], batch_size: int) -> list[str]:
    """Greedy replies to every message in every emotion, message by message, emotions in EMOTIONS order."""
    jobs = [(m, e) for m in messages for e in EMOTIONS]
    prompts = [drafter.prompt(m, e)[0] for m, e in jobs]
    guides = [drafter.guide(m, e) for m, e in jobs]
    out = drafter.generate(prompts, batch_size=batch_size, messages=[m for m, _ in jobs], guides=guides)
    return [candidates[0] for candidates in out]


def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
    dialogues = load_dialogues(args.dataset, args.split)[args.skip_dialogues : args.skip_dialogues + args.num_dialogues]
    messages = [normalize_text(d["utterances"][0]) for d in dialogues]
    judge = EmotionJudge.load(args.judge)
    drafter = ReplyDrafter.from_pretrained(args.model)
    lines = [
        f"{len(messages)} {args.split} openings (dialogues {args.skip_dialogues}-"
        f"{args.skip_dialogues + len(messages) - 1}) x 7 emotions, {drafter.name}",
        "",
        "| guidance, context contrast, plausibility | controllability | " + " | ".join(EMOTIONS) + " | distinct-2 |",
        "|---|---|" + "---|" * len(EMOTIONS) + "---|",
    ]
    drafts = {}
    for setting in args.settings:
        for key, value in zip(GUIDANCE_KEYS, setting, strict=True):
            setattr(drafter, key, value)
        replies = sweep_all(drafter, messages, args.batch_size)
        read = np.array(judge.predict(replies)).reshape(len(messages), len(EMOTIONS))
        per = {e: float(np.mean(read[:, i] == e)) for i, e in enumerate(EMOTIONS)}
        name = ", ".join(f"{v:g}" for v in setting)
        cells = " | ".join(f"{v:.0%}" for v in per.values())
        lines.append(f"| {name} | {np.mean(list(per.values())):.1%} | {cells} | {distinct_n(replies, 2):.3f} |")
        drafts[name] = [
            {"message": m, "emotion": e, "reply": r}
            for (m, e), r in zip([(m, e) for m in messages for e in EMOTIONS], replies, strict=True)
        ]
    out = "\n".join(lines)
    print(out)
    if args.output:
        Path(args.output).write_text(json.dumps(drafts, indent=1) + "\n")
    return out


if __name__ == "__main__":
    main()
