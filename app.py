"""emoreply's Gradio app (also a Hugging Face Space): your face picks the tone of your reply.

    python app.py [--emotion-model PATH_OR_ID] [--reply-model smollm2|t5|PATH_OR_ID] [--base-model ID|none]
                  [--precision fp32|bf16|int8]

The default responder is SmolLM2-135M-Instruct with emoreply's LoRA adapter: it answers the message
itself. ``--reply-model t5`` switches to the paper's architecture (the compact T5 emoreply trained from
scratch). The "base" column is the same pretrained model without the fine-tuning (for the adapter:
the same weights with the adapter off, so it costs no memory); for a T5 it is ``--base-model``.

Pure handlers first (unit-tested without a browser), then the layout, then the event wiring.
Frames and messages are processed in memory: never logged, never written by this app.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from emoreply import DISPLAY_NAMES, EMOTIONS
from emoreply.loading import ModelLoadError
from emoreply.reader import EmotionReader
from emoreply.reply import DEFAULT_BASE_MODEL_ID, DEFAULT_REPLY_MODEL, PRECISIONS, REPLY_MODELS, ReplyDrafter, compare

EXAMPLE_MESSAGES = [
    "How is your day going?",
    "I got the job!!",
    "Sorry, I can't make it to dinner tonight.",
    "Did you eat the last slice of cake?",
    "My cat has been missing since Tuesday.",
    "Guess who I just ran into at the airport?",
]
FACE = "Use my face"
LIVE_SMOOTHING = 0.3  # weight of the newest frame: ~3 frames of memory, no flicker, still responsive
NO_FACE_FALLBACK = "neutral"


@dataclass
class Models:
    """Everything the handlers need, loaded once at start-up."""

    reader: EmotionReader
    drafter: ReplyDrafter
    base: ReplyDrafter | None = None  # the drafter's pretrained base, for the side-by-side
    base_error: str | None = None  # why there is no base, in words


def load_models(
    emotion_model: str | None = None,
    reply_model: str | None = None,
    base_model: str | None = None,
    precision: str = "fp32",
) -> Models:
    """Bundled models by default; a base model that cannot be loaded (offline) is reported, not fatal.

    ``reply_model``: a name in ``REPLY_MODELS`` (default SmolLM2 + adapter), a folder or a Hub id.
    ``base_model``: "none" skips the comparison; otherwise an adapter's base is its own weights with
    the adapter off, and a full model's base is ``base_model`` (default: t5-small, from the Hub).
    ``precision``: the reply models' weight format, "fp32", "bf16" or "int8" (see the README).
    """
    reader = EmotionReader.from_pretrained(emotion_model)
    drafter = ReplyDrafter.from_pretrained(reply_model, precision=precision)
    if (base_model or "").lower() == "none":
        return Models(reader, drafter)
    try:
        base = drafter.base_drafter(base_model or DEFAULT_BASE_MODEL_ID)
    except ModelLoadError as err:  # the app keeps working without the comparison
        return Models(reader, drafter, None, f"No comparison with the base model: {err}")
    return Models(reader, drafter, base)


# ---------------------------------------------------------------- handlers (pure functions)


def label_value(probabilities: dict[str, float]) -> dict[str, float]:
    """Probabilities keyed by the names people read, for gr.Label."""
    return {DISPLAY_NAMES[e]: p for e, p in probabilities.items()}


def draw_box(frame: np.ndarray, box: tuple[int, int, int, int] | None) -> np.ndarray:
    """A copy of the frame with the face box drawn (the preview; the frame itself is never stored)."""
    import cv2

    preview = np.ascontiguousarray(frame[..., :3] if frame.ndim == 3 else np.stack([frame] * 3, -1)).copy()
    if preview.dtype != np.uint8:
        preview = np.clip(preview, 0, 255).astype(np.uint8)
    if box is not None:
        thickness = max(2, min(preview.shape[:2]) // 150)
        cv2.rectangle(preview, box[:2], box[2:], (60, 200, 90), thickness)
    return preview


def read_face(models: Models, frame: np.ndarray | None) -> tuple[np.ndarray | None, dict[str, float], str, str | None]:
    """Snapshot/upload -> (preview with the face box, probabilities, status line, detected emotion)."""
    if frame is None:
        return None, {}, "No picture yet: take a snapshot, upload a photo, or pick an emotion below.", None
    try:
        reading = models.reader.read(frame)
    except ValueError as err:
        return None, {}, f"⚠️ {err}", None
    if not reading.face_found:
        return draw_box(frame, None), {}, "No face found: try more light or face the camera, or pick an emotion.", None
    status = f"Detected: **{DISPLAY_NAMES[reading.emotion]}** ({reading.probabilities[reading.emotion]:.0%})"
    if reading.num_faces > 1:
        status += f" — {reading.num_faces} faces found; using the largest (boxed)."
    return draw_box(frame, reading.box), label_value(reading.probabilities), status, reading.emotion


def emotion_in_use(choice: str, detected: str | None) -> tuple[str, str]:
    """(emotion for the drafts, a line saying where it came from)."""
    if choice != FACE:
        return choice, f"Using **{DISPLAY_NAMES[choice]}** (chosen by you)."
    if detected is None:
        return NO_FACE_FALLBACK, f"No face read yet, so using **{DISPLAY_NAMES[NO_FACE_FALLBACK]}**."
    return detected, f"Using **{DISPLAY_NAMES[detected]}** (read from your face)."


def parse_history(text: str | None, max_turns: int = 4) -> list[str]:
    """Earlier turns, one per line, oldest first; only the last few are kept."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()][-max_turns:]


def draft_replies(
    models: Models, message: str, choice: str, detected: str | None, history: str | None
) -> tuple[str, str, str, str]:
    """(base draft, fine-tuned draft, editable draft, notice) for the message in the chosen emotion."""
    emotion, source = emotion_in_use(choice, detected)
    try:
        comparison = compare(
            models.drafter, models.base, message or "", emotion, parse_history(history), models.base_error
        )
    except ValueError as err:  # empty message
        return "", "", "", f"⚠️ {err}"
    notice = source
    if comparison.fine_tuned.truncated:
        notice += " Your message was long, so only its beginning was read."
    base = comparison.base if comparison.base is not None else f"(base model unavailable) {comparison.base_error}"
    return base, comparison.fine_tuned.text, comparison.fine_tuned.text, notice


def sweep_replies(models: Models, message: str, history: str | None) -> tuple[list[list[str]], str]:
    """One fine-tuned reply per emotion for the same message (one batched generate call)."""
    try:
        replies = models.drafter.sweep(message or "", parse_history(history))
    except ValueError as err:
        return [], f"⚠️ {err}"
    return [[DISPLAY_NAMES[e], replies[e]] for e in EMOTIONS], ""


def live_step(
    models: Models, frame: np.ndarray | None, smoothed: dict[str, float] | None
) -> tuple[dict[str, float], str, dict[str, float] | None, str | None]:
    """One streamed frame -> (smoothed label, status, new smoothing state, detected emotion).

    An exponential moving average over frames keeps the label from flickering; a frame without a
    face keeps the last estimate rather than wiping it.
    """
    if frame is None:
        return label_value(smoothed or {}), "Waiting for the camera…", smoothed, None
    try:
        reading = models.reader.read(frame)
    except ValueError as err:
        return label_value(smoothed or {}), f"⚠️ {err}", smoothed, None
    if not reading.face_found:
        detected = max(smoothed, key=smoothed.get) if smoothed else None
        return label_value(smoothed or {}), "No face in view.", smoothed, detected
    new = (
        reading.probabilities
        if not smoothed
        else {e: (1 - LIVE_SMOOTHING) * smoothed[e] + LIVE_SMOOTHING * p for e, p in reading.probabilities.items()}
    )
    detected = max(new, key=new.get)
    return label_value(new), f"Live: **{DISPLAY_NAMES[detected]}**", new, detected


# ---------------------------------------------------------------- layout and wiring


def build_demo(models: Models) -> Any:
    """The Blocks app bound to loaded models."""
    import gradio as gr

    emotion_choices = [(FACE, FACE)] + [(DISPLAY_NAMES[e], e) for e in EMOTIONS]
    # Gradio keeps uploads in its cache; delete_cache clears files older than 10 minutes every 10 minutes.
    with gr.Blocks(title="emoreply", delete_cache=(600, 600)) as demo:
        detected = gr.State(None)
        smoothed = gr.State(None)
        gr.Markdown(
            "# emoreply — your reaction says it all\n"
            "Paste a message you received, show the camera how it makes you feel, and get a reply drafted "
            "in that emotion. Drafts are suggestions: edit before you send. Pictures are read in memory "
            "and never stored; if the browser blocks the camera, upload a photo or pick an emotion."
        )
        with gr.Row():
            with gr.Column():
                message = gr.Textbox(
                    label="Message you received", lines=3, max_length=20_000, placeholder="e.g. How is your day going?"
                )
                gr.Examples(EXAMPLE_MESSAGES, inputs=message, label="Example messages")
                history = gr.Textbox(label="Earlier turns (optional, one per line, oldest first)", lines=2)
            with gr.Column():
                with gr.Tab("Snapshot"):
                    camera = gr.Image(label="Webcam or photo", sources=["webcam", "upload"], type="numpy")
                    preview = gr.Image(label="Face used", interactive=False, height=240)
                with gr.Tab("Live"):
                    live_camera = gr.Image(label="Live webcam", sources=["webcam"], type="numpy", streaming=True)
                status = gr.Markdown("No picture yet.")
                probabilities = gr.Label(label="Emotion probabilities", num_top_classes=len(EMOTIONS))
        choice = gr.Radio(emotion_choices, value=FACE, label="Emotion for the reply")
        draft_button = gr.Button("Draft reply", variant="primary")
        notice = gr.Markdown()
        with gr.Row():
            base_out = gr.Textbox(label="Base model (not fine-tuned)", interactive=False)
            tuned_out = gr.Textbox(label="Fine-tuned (emoreply)", interactive=False)
        draft = gr.Textbox(label="Your draft — edit, then copy", lines=2, interactive=True, buttons=["copy"])
        with gr.Accordion("All emotions: the fine-tuned reply in each of the seven", open=False):
            sweep_button = gr.Button("Draft in every emotion")
            sweep_notice = gr.Markdown()
            sweep_table = gr.Dataframe(headers=["emotion", "reply"], interactive=False, wrap=True)

        camera.change(
            partial(read_face, models),
            camera,
            [preview, probabilities, status, detected],
            concurrency_limit=4,
            trigger_mode="always_last",
            api_name="read_face",
        )
        live_camera.stream(
            partial(live_step, models),
            [live_camera, smoothed],
            [probabilities, status, smoothed, detected],
            stream_every=0.1,
            concurrency_limit=4,
            time_limit=600,
            api_name="live",
        )
        draft_button.click(
            partial(draft_replies, models),
            [message, choice, detected, history],
            [base_out, tuned_out, draft, notice],
            concurrency_limit=4,
            trigger_mode="once",
            api_name="draft",
        )
        sweep_button.click(
            partial(sweep_replies, models),
            [message, history],
            [sweep_table, sweep_notice],
            concurrency_limit=2,
            trigger_mode="once",
            api_name="sweep",
        )
    # Bounded queue: requests beyond it are refused with a message instead of piling up in memory.
    return demo.queue(max_size=64, default_concurrency_limit=4)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    env = os.environ.get
    parser.add_argument("--emotion-model", default=env("EMOREPLY_EMOTION_MODEL"), help="default: bundled")
    parser.add_argument(
        "--reply-model",
        default=env("EMOREPLY_REPLY_MODEL", DEFAULT_REPLY_MODEL),
        help=f"{' or '.join(REPLY_MODELS)} (bundled; default {DEFAULT_REPLY_MODEL}), or a folder / Hub id",
    )
    parser.add_argument(
        "--base-model",
        default=env("EMOREPLY_BASE_MODEL"),
        help="'none' skips the comparison; for a full (non-adapter) reply model, the Hub id or folder of its "
        f"base (default {DEFAULT_BASE_MODEL_ID})",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=env("EMOREPLY_PRECISION", "fp32"),
        help="the reply models' weights: fp32, bf16 (fast on GPUs and CPUs with AVX512-BF16/AMX) or int8 (CPU); "
        "env EMOREPLY_PRECISION",
    )
    parser.add_argument("--host", default=env("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env("GRADIO_SERVER_PORT", "7860")))
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    build_demo(load_models(args.emotion_model, args.reply_model, args.base_model, args.precision)).launch(
        server_name=args.host, server_port=args.port, show_error=False
    )
