"""Where one app round trip spends its time: torch profiler table of the top operators.

    python -m bench.profile_handler [--model bundled|t5-small-sized] [--rows 15]

Profiles read_face + the two drafts (see bench_handler.round_trip) after a warm-up. For the
Python side use py-spy, e.g. ``py-spy record -o profile.svg -- python -m bench.bench_handler``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from torch.profiler import ProfilerActivity, profile

import app
from bench.bench_emotion import webcam_frame
from bench.bench_handler import round_trip, t5_small_sized_folders
from bench.bench_reply import T5_TOKENIZER
from emoreply.reply.drafter import DEFAULT_REPLY_MODEL_PATH


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["bundled", "t5-small-sized"], default="bundled")
    parser.add_argument("--t5_tokenizer", default=T5_TOKENIZER)
    parser.add_argument("--rows", type=int, default=15)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if args.model == "bundled":
            tuned = base = str(DEFAULT_REPLY_MODEL_PATH)
        else:
            tuned, base = t5_small_sized_folders(args.t5_tokenizer, Path(tmp))
        models = app.load_models(None, tuned, base)
    frame = webcam_frame()
    for _ in range(3):
        round_trip(models, frame)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(5):
            round_trip(models, frame)
    out = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows)
    print(out)
    return out


if __name__ == "__main__":
    main()
