"""Emotion reader speed: CNN latency and throughput, face detection, training throughput.

python -m bench.bench_emotion [--model emoreply/pretrained/emotion-cnn] [--quick]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from bench.common import measure, table
from emoreply import EmotionCNNForImageClassification, EmotionCNNImageProcessor
from emoreply.emotion_cnn.image_processing_emotion_cnn import to_gray_uint8
from emoreply.reader import DEFAULT_EMOTION_MODEL, EmotionReader
from emoreply.training.emotion_eval import TTA_VIEWS


def webcam_frame(noisy_background: bool = False, face_side: int = 400) -> np.ndarray:
    """A 640x480 frame with one real face (scikit-image's astronaut) in front of a background.

    The background is a plain wall (blurred blotches) with mild sensor noise, as behind many webcam users;
    ``noisy_background`` makes every background pixel independent noise instead, the worst case
    for the Haar cascade (about twice the work: few windows are rejected at its first stages).
    The photo is pasted as a ``face_side`` square (0: no face); at 400 px the astronaut's face box is
    76 px, 16% of the frame's height: a user about 1 m from a laptop camera.
    """
    import cv2
    from PIL import Image
    from skimage import data

    rng = np.random.default_rng(0)
    frame = rng.integers(60, 200, (480, 640, 3), dtype=np.uint8)
    if not noisy_background:
        frame = cv2.GaussianBlur(frame, (0, 0), 12)
        frame = np.clip(frame + rng.normal(0, 3, frame.shape), 0, 255).astype(np.uint8)
    if face_side:
        photo = np.asarray(Image.fromarray(data.astronaut()).resize((face_side, face_side)))
        frame[40 : 40 + face_side, 120 : 120 + face_side] = photo
    return frame


def cnn_rows(reader: EmotionReader, plain: EmotionCNNForImageClassification, repeat: int) -> list[dict]:
    """``plain``: the CNN as loaded; ``reader.model``: its fused copy (BatchNorm folded, channels_last)."""
    fused = reader.model
    x1, x256 = torch.randn(1, 1, 48, 48), torch.randn(256, 1, 48, 48)
    threads = torch.get_num_threads()
    one, mirror, ten = TTA_VIEWS["no_tta"], TTA_VIEWS["tta_flip"], TTA_VIEWS["tta_ten_view"]
    base = measure(lambda: plain(x1, **one), repeat=repeat)  # eager eval, autograd on: the naive call
    rows = [{"name": "CNN batch 1, eager (autograd on), no TTA", **base, "baseline": True}]

    def row(
        name: str, model: EmotionCNNForImageClassification, views: dict, n_threads: int = threads, note: str = ""
    ) -> None:
        torch.set_num_threads(n_threads)
        r = measure(lambda: model(x1, **views), repeat=repeat)
        torch.set_num_threads(threads)
        rows.append({"name": name, **r, "ratio": base["median_ms"] / r["median_ms"], "note": note})

    with torch.inference_mode():
        row("CNN batch 1, inference_mode, no TTA", plain, one)
        row("CNN batch 1, inference_mode, fused, no TTA", fused, one, note="BN folded, channels_last")
        # One face is too little work to split across cores: a thread of its own is faster.
        row("CNN batch 1, inference_mode, fused, no TTA, 1 thread", fused, one, 1)
        row("CNN batch 1, inference_mode, mirror TTA", plain, mirror, note="2 views in one pass")
        row("CNN batch 1, inference_mode, fused, mirror TTA (the reader)", fused, mirror)
        row("CNN batch 1, inference_mode, fused, mirror TTA, 1 thread", fused, mirror, 1)
        row("CNN batch 1, inference_mode, fused, ten-view TTA", fused, ten, note="mirror x shifts")
        big = measure(lambda: fused(x256, **mirror), warmup=2, repeat=max(5, repeat // 5))
        rows.append(
            {"name": "CNN batch 256, fused, mirror TTA", **big, "note": f"{256 / big['median_ms'] * 1000:.0f} faces/s"}
        )
    return rows


def detection_rows(reader: EmotionReader, repeat: int) -> list[dict]:
    """Haar detection + crop: one full search (baseline) vs large faces first (the processor's default)."""
    proc = reader.processor
    single = EmotionCNNImageProcessor(**{**proc.to_dict(), "large_face_fraction": 0.0})
    rows: list[dict] = []
    frames = {
        "plain background": webcam_frame(),
        "per-pixel noise background (worst case)": webcam_frame(noisy_background=True),
        "small face (12% of the height: both passes), plain background": webcam_frame(face_side=300),
        "no face, per-pixel noise background (both passes)": webcam_frame(True, face_side=0),
    }
    for background, frame in frames.items():
        gray = to_gray_uint8(frame)
        name = f"face detection + crop, 640x480 grayscale, {background}"

        def detect_and_crop(p: EmotionCNNImageProcessor = proc, gray: np.ndarray = gray) -> None:
            boxes = p.detect_faces(gray)
            if boxes:
                p.crop_face(gray, boxes[0])

        base = measure(lambda gray=gray: detect_and_crop(single, gray), repeat=repeat)
        rows.append({"name": f"{name}, one full search", **base, "baseline": True})
        fast = measure(detect_and_crop, repeat=repeat)
        note = f"detection at {proc.detection_size}px; faces >= {proc.large_face_fraction:.0%} of the height first"
        ratio = base["median_ms"] / fast["median_ms"]
        rows.append({"name": f"{name}, large faces first", **fast, "ratio": ratio, "note": note})
    frame = webcam_frame()
    full = measure(lambda: reader.read(frame), repeat=repeat)
    rows.append({"name": "EmotionReader.read(640x480 RGB frame)", **full, "note": "gray + detect + crop + CNN"})
    return rows


def training_rows(steps: int) -> list[dict]:
    from emoreply import EmotionCNNConfig
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
    plain = EmotionCNNForImageClassification.from_pretrained(args.model).eval()
    rows = (
        cnn_rows(reader, plain, repeat)
        + detection_rows(reader, repeat // 2 or 1)
        + training_rows(3 if args.quick else 30)
    )
    out = table(rows, f"Emotion reader, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(out)
    return out


if __name__ == "__main__":
    main()
