"""Draft all seven emotions for new everyday messages and print them as markdown (README, model card).

    python train/sweep_examples.py [--model smollm2] [--base] [--output runs/sweeps.md]

The messages are not from DailyDialog: they are the kind of text a person receives. Greedy decoding
with the app's settings (``ReplyDrafter.sweep``: one batched generate call per message). With
``--base`` each message also gets the base model's sweep (for an adapter: the adapter switched off).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from emoreply.emotion_cnn import DISPLAY_NAMES, EMOTIONS
from emoreply.reply import DEFAULT_REPLY_MODEL, ReplyDrafter

MESSAGES = [
    "My flight got cancelled, I'm stuck at the airport.",
    "Grandma is in the hospital, she fell this morning.",
    "We're getting a puppy this weekend!",
    "Someone keyed my car last night.",
    "Can you pick up milk on your way home?",
    "I failed my driving test again.",
    "Guess who's moving to your city next month?",
    "The landlord is raising the rent by 30%.",
    "Did you see the game last night?",
    "I think I left the oven on at your place.",
]


def sweeps_markdown(drafter: ReplyDrafter, messages: list[str], base: ReplyDrafter | None = None) -> str:
    """One table per message: emotion -> the fine-tuned reply (and the base model's)."""
    blocks = []
    for message in messages:
        tuned = drafter.sweep(message)
        header = "| emotion | fine-tuned |" + (" base |" if base else "")
        lines = [f"**“{message}”**", "", header, "|---|---|" + ("---|" if base else "")]
        untuned = base.sweep(message) if base else {}
        for e in EMOTIONS:
            cells = [DISPLAY_NAMES[e], tuned[e]] + ([untuned[e]] if base else [])
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_REPLY_MODEL, help="smollm2 | t5 (bundled), or a folder / Hub id")
    parser.add_argument("--base", action="store_true", help="also the base model's sweep (adapters only)")
    parser.add_argument("--messages", help="a text file, one message per line (default: ten built-in messages)")
    parser.add_argument("--output", help="also write the markdown here")
    args = parser.parse_args(argv)
    messages = Path(args.messages).read_text().splitlines() if args.messages else MESSAGES
    drafter = ReplyDrafter.from_pretrained(args.model)
    out = sweeps_markdown(drafter, [m for m in messages if m.strip()], drafter.base_drafter() if args.base else None)
    if args.output:
        Path(args.output).write_text(out)
    print(out)
    return out


if __name__ == "__main__":
    main()
