"""Peak RSS of one app process: load the models, build the UI, run 5 round trips; printed as JSON.

    python -m bench.app_peak_rss [--reply-model PATH_OR_ID] [--base-model PATH_OR_ID] [--precision fp32|bf16|int8]

bench.bench_handler runs it in a fresh process per model set, so that the figure (VmHWM) is this
app's alone: default models unless told otherwise, no base model unless ``--base-model`` names one.
"""

from __future__ import annotations

import argparse
import json

import app
from bench.bench_emotion import webcam_frame
from bench.bench_handler import round_trip
from bench.common import peak_rss_mb
from emoreply.reply import PRECISIONS


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reply-model", default=None, help="default: the default responder")
    parser.add_argument("--base-model", default=None, help="default: none (for the adapter: the adapter off)")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32")
    args = parser.parse_args(argv)
    models = app.load_models(None, args.reply_model, args.base_model, precision=args.precision)
    app.build_demo(models)
    frame = webcam_frame()
    for _ in range(5):
        round_trip(models, frame)
    mb = peak_rss_mb()
    print(json.dumps({"peak_rss_mb": mb}))
    return mb


if __name__ == "__main__":
    main()
