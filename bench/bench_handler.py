"""The app's end-to-end handler: a 640x480 frame + a message -> emotion + two drafts (base and fine-tuned).

    python bench/bench_handler.py [--quick] [--t5_tokenizer ../shared/models/t5-small-tokenizer]

What one "Use my face" round trip costs: app.read_face (detect, crop, CNN) then app.draft_replies
(compare: the base and the fine-tuned T5 answer the same prompt). Two model sets:

- bundled: the bundled CNN and responder; offline there is no t5-small base, so the responder
  stands in as the base too (two drafts, as in the app online);
- t5-small-sized: two random models of google-t5/t5-small's shape, forced to 20 new tokens.

Baseline: base and fine-tuned drafted one after the other; then concurrently (the default), and
with int8 or bf16 weights. Peak RSS of an app process holding both t5-small-sized models is
measured in a fresh subprocess (gradio imported, the Blocks built, 5 round trips run).
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT))
from bench_emotion import webcam_frame  # noqa: E402
from bench_reply import t5_small_sized_folder  # noqa: E402
from common import measure, table  # noqa: E402

import app  # noqa: E402
from emoreply.reader import EmotionReader  # noqa: E402
from emoreply.reply import ReplyDrafter  # noqa: E402
from emoreply.reply.drafter import DEFAULT_REPLY_MODEL_PATH, MAX_NEW_TOKENS  # noqa: E402

MESSAGE = "How is your day going? I heard you had a job interview this morning."

RSS_SCRIPT = """
import json, sys
sys.path.insert(0, {root!r}); sys.path.insert(0, {bench!r})
import app
from bench_emotion import webcam_frame
from common import peak_rss_mb
models = app.load_models(None, {tuned!r}, {base!r}, precision={precision!r})
app.build_demo(models)
frame = webcam_frame()
for _ in range(5):
    detected = app.read_face(models, frame)[3]
    app.draft_replies(models, {message!r}, app.FACE, detected, "")
print(json.dumps({{"peak_rss_mb": peak_rss_mb()}}))
"""


def round_trip(models: app.Models, frame, concurrent: bool) -> None:
    """read_face then the two drafts, exactly as the app's two events run them."""
    detected = app.read_face(models, frame)[3]
    emotion, _ = app.emotion_in_use(app.FACE, detected)
    models.drafter.compare(MESSAGE, emotion, concurrent=concurrent)


def rows_for(name: str, load: Callable[[str], app.Models], repeat: int) -> list[dict]:
    """The round trip with ``load(precision)``'s models: fp32 sequential, fp32 concurrent, int8 and bf16."""
    frame = webcam_frame()
    models = load("fp32")
    seq = measure(lambda: round_trip(models, frame, False), warmup=2, repeat=repeat)
    par = measure(lambda: round_trip(models, frame, True), warmup=2, repeat=repeat)
    rows = [
        {"name": f"{name}: frame + message -> emotion + 2 drafts, one after the other", **seq, "baseline": True},
        {
            "name": f"{name}: same, drafts concurrent (default)",
            **par,
            "ratio": seq["median_ms"] / par["median_ms"],
            "note": "speed-up vs baseline",
        },
    ]
    for precision in ("int8", "bf16"):
        low = load(precision)
        timed = measure(lambda: round_trip(low, frame, True), warmup=2, repeat=repeat)  # noqa: B023
        rows.append(
            {
                "name": f"{name}: same, concurrent + {precision} T5s",
                **timed,
                "ratio": seq["median_ms"] / timed["median_ms"],
                "note": "speed-up vs baseline; quality cost in the README",
            }
        )
    return rows


def t5_small_sized_folders(tokenizer_dir: str, folder: Path) -> tuple[str, str]:
    """Two random t5-small-sized models saved to ``folder`` (fine-tuned stand-in, base stand-in), 20-token replies."""
    return tuple(t5_small_sized_folder(tokenizer_dir, folder / name, MAX_NEW_TOKENS) for name in ("tuned", "base"))


def peak_rss(tuned: str, base: str, precision: str) -> float:
    code = RSS_SCRIPT.format(
        root=str(ROOT), bench=str(Path(__file__).parent), tuned=tuned, base=base, precision=precision, message=MESSAGE
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_rss_mb"]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--t5_tokenizer", default="../shared/models/t5-small-tokenizer")
    parser.add_argument("--quick", action="store_true", help="few repeats (smoke test)")
    args = parser.parse_args(argv)
    repeat = 3 if args.quick else 30
    reader = EmotionReader.from_pretrained()
    bundled = str(DEFAULT_REPLY_MODEL_PATH)

    def load_bundled(precision: str) -> app.Models:
        return app.Models(reader, ReplyDrafter.from_pretrained(bundled, base_model=bundled, precision=precision))

    rows = rows_for("bundled", load_bundled, repeat)
    with tempfile.TemporaryDirectory() as tmp:
        tuned, base = t5_small_sized_folders(args.t5_tokenizer, Path(tmp))
        rows += rows_for("t5-small-sized", partial(app.load_models, None, tuned, base), max(3, repeat // 2))
        for precision in ("fp32", "int8", "bf16"):
            mb = peak_rss(tuned, base, precision)
            rows.append(
                {
                    "name": f"app process peak RSS, both t5-small-sized models ({precision})",
                    "note": f"**{mb:.0f} MiB** (VmHWM of a fresh process: load, build the UI, 5 round trips)",
                }
            )
    out = table(rows, f"App handler end to end, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(out)
    return out


if __name__ == "__main__":
    main()
