"""Emotion reader speed: CNN latency and throughput, face detection, training throughput.

python bench/bench_emotion.py [--model emoreply/pretrained/emotion-cnn] [--quick]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import measure, table  # noqa: E402

from emoreply.emotion_cnn.image_processing_emotion_cnn import to_gray_uint8  # noqa: E402
from emoreply.reader import DEFAULT_EMOTION_MODEL, EmotionReader  # noqa: E402


def webcam_frame() -> np.ndarray:
    """A 640x480 frame with one real face (scikit-image's astronaut) on a textured background."""
    from PIL import Image
    from skimage import data

    rng = np.random.default_rng(0)
    frame = rng.integers(60, 200, (480, 640, 3), dtype=np.uint8)
    frame[40:440, 120:520] = np.asarray(Image.fromarray(data.astronaut()).resize((400, 400)))
    return frame


def cnn_rows(reader: EmotionReader, repeat: int) -> list[dict]:
    model, config = reader.model, reader.model.config
    x1, x256 = torch.randn(1, 1, 48, 48), torch.randn(256, 1, 48, 48)
    rows = []
    flip = config.test_time_flip
    config.test_time_flip = False
    base = measure(lambda: model(x1), repeat=repeat)  # eager eval, autograd on: the naive call
    rows.append({"name": "CNN batch 1, eager (autograd on), no TTA", **base, "baseline": True})
    with torch.inference_mode():
        fast = measure(lambda: model(x1), repeat=repeat)
        rows.append(
            {"name": "CNN batch 1, inference_mode, no TTA", **fast, "ratio": base["median_ms"] / fast["median_ms"]}
        )
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # one face is too little work to split across cores
        one = measure(lambda: model(x1), repeat=repeat)
        torch.set_num_threads(threads)
        rows.append(
            {
                "name": "CNN batch 1, inference_mode, no TTA, 1 thread",
                **one,
                "ratio": base["median_ms"] / one["median_ms"],
                "note": f"vs {threads} threads above",
            }
        )
        config.test_time_flip = True
        tta = measure(lambda: model(x1), repeat=repeat)
        rows.append(
            {
                "name": "CNN batch 1, inference_mode, mirror TTA (default)",
                **tta,
                "ratio": base["median_ms"] / tta["median_ms"],
                "note": "2 views in one pass",
            }
        )
        big = measure(lambda: model(x256), warmup=2, repeat=max(5, repeat // 5))
        rows.append(
            {"name": "CNN batch 256, mirror TTA", **big, "note": f"{256 / big['median_ms'] * 1000:.0f} faces/s"}
        )
    config.test_time_flip = flip
    return rows


def detection_rows(reader: EmotionReader, repeat: int) -> list[dict]:
    frame = webcam_frame()
    proc = reader.processor
    gray = to_gray_uint8(frame)
    detect = measure(lambda: proc.crop_face(gray, proc.detect_faces(gray)[0]), repeat=repeat)
    full = measure(lambda: reader.read(frame), repeat=repeat)
    return [
        {"name": "face detection + crop, 640x480 grayscale", **detect, "note": f"detection at {proc.detection_size}px"},
        {"name": "EmotionReader.read(640x480 RGB frame)", **full, "note": "gray + detect + crop + CNN"},
    ]


def training_rows(steps: int) -> list[dict]:
    from emoreply import EmotionCNNConfig, EmotionCNNForImageClassification
    from emoreply.training.fer_data import augment

    model = EmotionCNNForImageClassification(EmotionCNNConfig()).train().to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    x, y, g = torch.randn(64, 1, 48, 48), torch.randint(0, 7, (64,)), torch.Generator().manual_seed(0)

    def step() -> None:
        xb = augment(x, g).contiguous(memory_format=torch.channels_last)
        model(xb, labels=y).loss.backward()
        opt.step()
        opt.zero_grad()

    r = measure(step, warmup=3, repeat=steps)
    ips = 64 / r["median_ms"] * 1000
    return [
        {
            "name": "training step, batch 64 (augment + fwd + bwd + AdamW)",
            **r,
            "note": f"{ips:.0f} images/s, {25838 / ips:.0f} s/epoch on 25,838 images",
        }
    ]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=str(DEFAULT_EMOTION_MODEL))
    parser.add_argument("--quick", action="store_true", help="few repeats (smoke test)")
    args = parser.parse_args(argv)
    repeat = 5 if args.quick else 200
    reader = EmotionReader.from_pretrained(args.model)
    rows = cnn_rows(reader, repeat) + detection_rows(reader, repeat // 2 or 1) + training_rows(3 if args.quick else 30)
    out = table(rows, f"Emotion reader, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(out)
    return out


if __name__ == "__main__":
    main()
