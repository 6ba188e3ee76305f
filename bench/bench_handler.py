"""The app's end-to-end handler: a 640x480 frame + a message -> emotion + two drafts (base and fine-tuned).

    python -m bench.bench_handler [--quick] [--t5_tokenizer ../shared/models/t5-small-tokenizer]

What one "Use my face" round trip costs: app.read_face (detect, crop, CNN) then app.draft_replies
(the fine-tuned model answers the message, and the page shows its draft; then the base model
answers it too). The round trip is timed to the fine-tuned draft and to both drafts. Two model sets:

- default: the bundled CNN and the default responder (SmolLM2-135M-Instruct + emoreply's LoRA
  adapter); the base is the same weights with the adapter off;
- t5-small-sized: two random models of google-t5/t5-small's shape, forced to 20 new tokens.

Baseline: fp32; then int8 and bf16 weights. Peak RSS of an app process holding each set (both
drafts available) is measured in a fresh process (``bench.app_peak_rss``: gradio imported, the Blocks built,
5 round trips run).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

import app
from bench.bench_emotion import webcam_frame
from bench.bench_reply import MESSAGE, T5_TOKENIZER, t5_small_sized_folder
from bench.common import measure, table
from emoreply.reply.drafter import MAX_NEW_TOKENS

ROOT = Path(__file__).resolve().parents[1]


def round_trip(models: app.Models, frame, first_draft: bool = False) -> None:
    """read_face then draft_replies, exactly as the app's two events run them, to both drafts (or to
    the fine-tuned draft, the step the page shows first)."""
    detected = app.read_face(models, frame)[3]
    for _ in app.draft_replies(models, MESSAGE, app.FACE, detected, ""):
        if first_draft:
            return


def rows_for(name: str, load: Callable[[str], app.Models], repeat: int) -> list[dict]:
    """The round trip with ``load(precision)``'s models: fp32 (baseline), int8 and bf16."""
    frame = webcam_frame()
    models = load("fp32")
    base = measure(partial(round_trip, models, frame), warmup=2, repeat=repeat)
    rows = [{"name": f"{name}: frame + message -> emotion + 2 drafts (fp32)", **base, "baseline": True}]
    first = measure(partial(round_trip, models, frame, first_draft=True), warmup=2, repeat=repeat)
    ratio = base["median_ms"] / first["median_ms"]
    rows.append({"name": f"{name}: same, to the fine-tuned draft (shown first)", **first, "ratio": ratio})
    rows[-1]["note"] = "speed-up vs both drafts"
    del models
    for precision in ("int8", "bf16"):
        timed = measure(partial(round_trip, load(precision), frame), warmup=2, repeat=repeat)
        rows.append(
            {
                "name": f"{name}: same, {precision} reply weights",
                **timed,
                "ratio": base["median_ms"] / timed["median_ms"],
                "note": "speed-up vs fp32; quality cost in docs/reply-drafter.md",
            }
        )
    return rows


def t5_small_sized_folders(tokenizer_dir: str, folder: Path) -> tuple[str, str]:
    """Two random t5-small-sized models saved to ``folder`` (fine-tuned stand-in, base stand-in), 20-token replies."""
    return tuple(t5_small_sized_folder(tokenizer_dir, folder / name, MAX_NEW_TOKENS) for name in ("tuned", "base"))


def rss_row(what: str, tuned: str | None, base: str, precision: str) -> dict:
    mb = peak_rss(tuned, base, precision)
    return {
        "name": f"app process peak RSS, {what} ({precision})",
        "note": f"**{mb:.0f} MiB** (VmHWM of a fresh process: load, build the UI, 5 round trips)",
    }


def peak_rss(tuned: str | None, base: str, precision: str) -> float:
    """Peak RSS (MiB) of a fresh app process holding these models: ``python -m bench.app_peak_rss``."""
    command = [sys.executable, "-m", "bench.app_peak_rss", "--precision", precision]
    command += ["--reply-model", tuned] if tuned else []
    command += ["--base-model", base] if base else []
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_rss_mb"]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--t5_tokenizer", default=T5_TOKENIZER)
    parser.add_argument("--quick", action="store_true", help="few repeats (smoke test)")
    parser.add_argument("--repeat", type=int, help="timed repeats per row (default 30; 3 with --quick)")
    parser.add_argument("--default_only", action="store_true", help="only the default models' rows")
    args = parser.parse_args(argv)
    repeat = args.repeat or (3 if args.quick else 30)
    rows = rows_for("default", partial(app.load_models, None, None, None), repeat)
    rows.append(rss_row("default responder, base = adapter off", None, "", "fp32"))
    rows.append(rss_row("default responder merged, base loaded apart", None, "", "int8"))
    with tempfile.TemporaryDirectory() as tmp:
        if args.default_only:
            return _print(table(rows, _title()))
        tuned, base = t5_small_sized_folders(args.t5_tokenizer, Path(tmp))
        rows += rows_for("t5-small-sized", partial(app.load_models, None, tuned, base), max(3, repeat // 2))
        for precision in ("fp32", "int8", "bf16"):
            rows.append(rss_row("both t5-small-sized models", tuned, base, precision))
    return _print(table(rows, _title()))


def _title() -> str:
    return f"App handler end to end, torch {torch.__version__}, {torch.get_num_threads()} threads"


def _print(out: str) -> str:
    print(out)
    return out


if __name__ == "__main__":
    main()
