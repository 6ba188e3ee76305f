"""emoreply's Gradio app (also a Hugging Face Space): your face picks the tone of your reply.

    python app.py [--emotion-model PATH_OR_ID] [--reply-model smollm2|t5|PATH_OR_ID] [--base-model ID|none]
                  [--precision fp32|bf16|int8]

The default responder is SmolLM2-135M-Instruct with emoreply's LoRA adapter: it answers the message
itself. ``--reply-model t5`` switches to the paper's architecture (the compact T5 emoreply trained from
scratch). The "base" column is the same pretrained model without the fine-tuning (for the adapter:
the same weights with the adapter off, so it costs no memory); for a T5 it is ``--base-model``.

Pure handlers first (unit-tested without a browser), then the layout, then the event wiring.
Frames and messages are processed in memory and never logged; the one file Gradio writes for an
upload or snapshot is deleted seconds later (see PICTURES_NOTE).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import io
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import gradio as gr
import numpy as np
from gradio.data_classes import Base64ImageData, ImageData
from PIL import Image, ImageOps

from emoreply import DISPLAY_NAMES, EMOTIONS
from emoreply.emotion_cnn.image_processing_emotion_cnn import HIGH_DEPTH_MODES, MAX_IMAGE_PIXELS, to_gray_uint8
from emoreply.loading import ModelLoadError, load_image
from emoreply.reader import EmotionReader, EmotionReading
from emoreply.reply import DEFAULT_BASE_MODEL_ID, DEFAULT_REPLY_MODEL, PRECISIONS, REPLY_MODELS, ReplyDrafter

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
WARNING = "⚠️"  # how a handler's status line starts when the user's input could not be used
BASE_FOLLOWS = " The base model's reply follows."  # the notice while the base drafts its reply
MAX_UPLOAD_MB = 20  # launch(max_file_size): larger uploads are refused before they are written
WORK_SIDE = 1280  # pictures are read and previewed at most this large (detection itself runs at 320 px)
# Formats without reduced decoding (PNG, WebP, ...) decode at full size, 4 bytes a pixel: capping them
# at 24 MP (96 MB decoded) keeps a hostile upload's memory near that of normal use. JPEGs go to 50 MP.
MAX_FULL_DECODE_PIXELS = 24_000_000
LIVE_SECONDS = 4  # a Live stream holds its slot this long, then the page starts a new one through the queue
LIVE_LEASE = 1.5  # a client's Live stream counts as running this long after its last frame (10 frames a second)
# An upload is deleted this long after its request has read it, not by age: a request may wait its turn
# in the queue for any time, and the page fetches the upload back from the server to show it.
READ_GRACE = 10
# Gradio's delete_cache, only for uploads no request ever reads (the client left): hourly, those over an hour old.
UPLOAD_SWEEP = (3600, 3600)
CACHE_DIR = Path(tempfile.gettempdir()) / "emoreply-gradio"  # Gradio's uploads, this app's alone
PICTURES_NOTE = (
    f"Pictures are read in memory. Gradio writes each upload or snapshot to `{CACHE_DIR}` on the server; "
    f"it is deleted {READ_GRACE} seconds after the app has read it (the page shows it back to you from "
    f"there), or after {UPLOAD_SWEEP[1] // 3600}-{sum(UPLOAD_SWEEP) // 3600} hours if no request ever reads it. "
    "The folder is emptied at start-up and shutdown. Previews are sent back inline and Live frames never "
    "touch the disk."
)
_DECODE_LOCK = threading.Lock()  # one full-size decode at a time: hostile uploads cannot stack them


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
    ``precision``: the reply models' weight format, "fp32", "bf16" or "int8" (speed and quality:
    docs/reply-drafter.md, "Lighter weights").
    """
    reader = EmotionReader.from_pretrained(emotion_model)
    drafter = ReplyDrafter.from_pretrained(reply_model, precision=precision)
    if (base_model or "").lower() == "none":
        return Models(reader, drafter)
    try:
        base = drafter.base_drafter(base_model)
    except ModelLoadError as err:  # the app keeps working without the comparison
        return Models(reader, drafter, None, f"No comparison with the base model: {err}")
    return Models(reader, drafter, base)


# ---------------------------------------------------------------- handlers (pure functions)


def label_value(probabilities: dict[str, float]) -> dict[str, float]:
    """Probabilities keyed by the names people read, for gr.Label."""
    return {DISPLAY_NAMES[e]: p for e, p in probabilities.items()}


def open_picture(picture: Any) -> Image.Image | np.ndarray:
    """Upload bytes (or an image or array) -> a picture at most WORK_SIDE wide and high, in a mode the
    reader takes; ValueError in words for anything unreadable or too large.

    The size (at most MAX_IMAGE_PIXELS) is checked from the header first; JPEGs decode at a reduced scale,
    other formats (at most MAX_FULL_DECODE_PIXELS) one at a time and are shrunk at once, so a burst of
    large uploads costs one full-size decode of 96 MB at most.
    """
    if not isinstance(picture, (bytes, bytearray)):
        return load_image(picture, MAX_IMAGE_PIXELS)  # arrays and PIL images: the reader checks their size
    with _DECODE_LOCK:
        image = load_image(picture, MAX_IMAGE_PIXELS, (WORK_SIDE, WORK_SIDE), MAX_FULL_DECODE_PIXELS)
        ImageOps.exif_transpose(image, in_place=True)  # phone photos stored sideways
        if image.mode in HIGH_DEPTH_MODES:
            image = Image.fromarray(to_gray_uint8(image))
        image.thumbnail((WORK_SIDE, WORK_SIDE))
    return image


def draw_box(picture: Image.Image | np.ndarray, box: tuple[int, int, int, int] | None) -> np.ndarray:
    """An RGB copy of the picture with the face box drawn (the preview; the picture itself is never stored)."""
    frame = np.asarray(picture.convert("RGB")) if isinstance(picture, Image.Image) else picture
    preview = np.ascontiguousarray(frame[..., :3] if frame.ndim == 3 else np.stack([frame] * 3, -1)).copy()
    if preview.dtype != np.uint8:
        preview = np.clip(preview, 0, 255).astype(np.uint8)
    if box is not None:
        thickness = max(2, min(preview.shape[:2]) // 150)
        cv2.rectangle(preview, box[:2], box[2:], (60, 200, 90), thickness)
    return preview


def read_picture(models: Models, picture: Any) -> tuple[Image.Image | np.ndarray, EmotionReading]:
    """(the picture as read, the reading); ValueError in words for unusable input."""
    image = open_picture(picture)
    return image, models.reader.read(image)


def read_face(models: Models, frame: Any) -> tuple[np.ndarray | None, dict[str, float], str, str | None]:
    """Snapshot/upload (bytes, image or array) -> (preview with the face box, probabilities, status line,
    detected emotion)."""
    if frame is None:
        return None, {}, "No picture yet: take a snapshot, upload a photo, or pick an emotion below.", None
    try:
        image, reading = read_picture(models, frame)
    except ValueError as err:
        return None, {}, f"{WARNING} {err}", None
    if not reading.face_found:
        return draw_box(image, None), {}, "No face found: try more light or face the camera, or pick an emotion.", None
    status = f"Detected: **{DISPLAY_NAMES[reading.emotion]}** ({reading.probabilities[reading.emotion]:.0%})"
    if reading.faces_note:
        status += f" — {reading.faces_note} (boxed)."
    return draw_box(image, reading.box), label_value(reading.probabilities), status, reading.emotion


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
) -> Iterator[tuple[str, str, str, str]]:
    """(base draft, fine-tuned draft, editable draft, notice) for the message in the chosen emotion, in
    two steps: the fine-tuned draft alone first (it is the one to send, and drafted in one batch with
    the base's reply, which is usually longer, it would wait for it), then the base model's beside it."""
    emotion, source = emotion_in_use(choice, detected)
    turns = parse_history(history)
    try:
        tuned = models.drafter.draft(message or "", emotion, turns)
    except ValueError as err:  # empty message
        yield "", "", "", f"{WARNING} {err}"
        return
    notice = source
    if tuned.truncated:
        notice += " Your message was long, so only its beginning was read."
    if models.base is None:
        error = models.base_error or "No base model was loaded."
        yield f"(base model unavailable) {error}", tuned.text, tuned.text, notice
        return
    yield "", tuned.text, tuned.text, notice + BASE_FOLLOWS
    yield models.base.draft(message, emotion, turns).text, tuned.text, tuned.text, notice


def sweep_replies(models: Models, message: str, history: str | None) -> tuple[list[list[str]], str]:
    """One fine-tuned reply per emotion for the same message (one batched generate call)."""
    try:
        replies = models.drafter.sweep(message or "", parse_history(history))
    except ValueError as err:
        return [], f"⚠️ {err}"
    return [[DISPLAY_NAMES[e], replies[e]] for e in EMOTIONS], ""


def live_step(
    models: Models, frame: Any, smoothed: dict[str, float] | None
) -> tuple[dict[str, float], str, dict[str, float] | None, str | None]:
    """One streamed frame -> (smoothed label, status, new smoothing state, detected emotion).

    An exponential moving average over frames keeps the label from flickering; a frame without a
    face keeps the last estimate rather than wiping it.
    """
    if frame is None:
        return label_value(smoothed or {}), "Waiting for the camera…", smoothed, None
    try:
        _, reading = read_picture(models, frame)
    except ValueError as err:
        return label_value(smoothed or {}), f"{WARNING} {err}", smoothed, None
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


class LiveClients:
    """One Live stream per client address. A second stream from the same address (another tab, or a
    script opening several) is refused while the first still sends frames, so one client cannot hold
    more than one of the Live slots; the page restarting its own stream keeps its session and is let in."""

    def __init__(self, lease: float = LIVE_LEASE) -> None:
        self.lease = lease
        self._holders: dict[str, tuple[str, float]] = {}  # address -> (session, time of its last frame)
        self._lock = threading.Lock()

    def claim(self, address: str, session: str, now: float | None = None) -> None:
        """Record a frame of ``session`` from ``address``; ValueError in words if another session holds it."""
        now = time.monotonic() if now is None else now
        with self._lock:
            holder = self._holders.get(address)
            if holder and holder[0] != session and now - holder[1] < self.lease:
                raise ValueError(
                    "Live is already running in another tab or window of yours: close it, or try again in a moment."
                )
            self._holders = {a: h for a, h in self._holders.items() if now - h[1] < self.lease}  # forget the gone
            self._holders[address] = (session, now)


def live_event(models: Models, clients: LiveClients) -> Callable:
    """The Live stream's event: :func:`live_step` for the one stream its client may run at a time."""
    step = as_event(partial(live_step, models), 1)

    def event(frame: Any, smoothed: dict[str, float] | None, request: gr.Request) -> tuple:
        try:
            clients.claim(request.client.host if request.client else "", request.session_hash or "")
        except ValueError as err:
            raise user_error(str(err)) from None
        return step(frame, smoothed)

    return event


def user_error(message: str) -> gr.Error:
    """An error for the person (or API client) who sent the input: its words go to them, no traceback to the log."""
    return gr.Error(message, print_exception=False)


def check_request(message: Any, history: Any, choice: Any = FACE) -> None:
    """ValueError in words for inputs the page cannot send but an API client can."""
    if choice != FACE and choice not in EMOTIONS:
        raise ValueError(f"Unknown emotion {choice!r}: use {FACE!r} or one of {', '.join(EMOTIONS)}.")
    for what, text in (("message", message), ("earlier turns", history)):
        if text is not None and not isinstance(text, str):
            raise ValueError(f"The {what} must be text, not {type(text).__name__}.")
        try:
            (text or "").encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"The {what} holds a broken character (unpaired surrogate); please retype it.") from None


def check_draft_request(message: Any, choice: Any, detected: Any, history: Any) -> None:
    """check_request in /draft's input order (the detected emotion is server-side state)."""
    check_request(message, history, choice)


def check_inputs(check: Callable[..., None] | None, inputs: tuple) -> None:
    """``check(*inputs)``'s ValueError as gr.Error with its words."""
    try:
        if check is not None:
            check(*inputs)
    except ValueError as err:
        raise user_error(str(err)) from None


def refuse_warning(outputs: tuple, status_at: int) -> tuple:
    """``outputs``, unless their status (at ``status_at``) is a warning: then gr.Error with its words."""
    status = outputs[status_at]
    if isinstance(status, str) and status.startswith(WARNING):
        raise user_error(status.removeprefix(WARNING).strip())
    return outputs


def as_event(handler: Callable[..., tuple], status_at: int, check: Callable[..., None] | None = None) -> Callable:
    """``handler`` for Gradio: a refused input or a warning status raises gr.Error with the words, so an
    API client gets them as the error message (the page also shows them, see FAILED)."""

    def event(*inputs: Any) -> tuple:
        check_inputs(check, inputs)
        return refuse_warning(handler(*inputs), status_at)

    return event


def as_stream_event(
    handler: Callable[..., Iterator[tuple]], status_at: int, check: Callable[..., None] | None = None
) -> Callable:
    """:func:`as_event` for a handler that yields its outputs in steps: the page shows each step, an API
    client gets the last."""

    def event(*inputs: Any) -> Iterator[tuple]:
        check_inputs(check, inputs)
        for outputs in handler(*inputs):
            yield refuse_warning(outputs, status_at)

    return event


FAILED = f"{WARNING} That did not work; the reason is in the message at the top right."


def failed_read() -> tuple[None, dict[str, float], str, None]:
    """What the page shows after a refused picture: no preview, no reading, no stale emotion."""
    return None, {}, FAILED, None


def decode_data_url(url: str, max_bytes: int) -> bytes:
    """A ``data:image/...;base64,`` URL (Live frames, API clients) -> its bytes; gr.Error in words otherwise."""
    header, _, payload = url.partition(",")
    if not header.endswith(";base64") or len(payload) > max_bytes * 4 // 3 + 4:
        raise user_error(f"Send a base64 image of at most {max_bytes // 2**20} MB.")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise user_error("The image data is not valid base64.") from None


def delete_after_read(file: Path, read_at: float) -> None:
    """Delete an upload (and Gradio's folder for it) READ_GRACE seconds after a request read it at ``read_at``,
    unless it was uploaded again since: the same bytes under the same name share one file, and the
    request that sent it again has still to read it (its own read schedules the deletion)."""

    def delete() -> None:
        try:
            if file.stat().st_ctime <= read_at:
                file.unlink()
                file.parent.rmdir()
        except OSError:  # already gone, or the folder holds another upload
            pass

    timer = threading.Timer(READ_GRACE, delete)
    timer.daemon = True  # shutdown does not wait: the cache is emptied then anyway
    timer.start()


def read_upload(path: str, cache_dir: Path, max_bytes: int) -> bytes:
    """The bytes of an upload in Gradio's cache (deleted READ_GRACE seconds later); gr.Error in words otherwise."""
    file = Path(path).resolve()
    if not file.is_relative_to(cache_dir.resolve()):  # Gradio refuses these earlier; read nothing else
        raise user_error("Upload the picture through this page or its API.")
    try:
        with open(file, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError:  # deleted by hand, or an upload no request read within UPLOAD_SWEEP's hour
        raise user_error("The picture was deleted before its turn came; please send it again.") from None
    delete_after_read(file, time.time())
    if len(data) > max_bytes:
        raise user_error(f"The picture is larger than {max_bytes // 2**20} MB.")
    return data


def jpeg_data_url(frame: np.ndarray) -> str:
    """The preview as an inline JPEG: nothing written, nothing for another request to overwrite."""
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class MemoryImage(gr.Image):
    """gr.Image that hands the handler raw bytes and keeps no picture on disk.

    Gradio's own decoding (full size, converted to 8-bit RGB) is skipped: the handler decodes with
    the header checked first. Previews go back as data URLs, never written.
    """

    is_template = True  # drawn by the page's Image component

    def preprocess(self, payload: ImageData | None) -> bytes | None:
        if payload is None:
            return None
        max_bytes = MAX_UPLOAD_MB * 2**20
        if payload.url and payload.url.startswith("data:"):
            return decode_data_url(payload.url, max_bytes)
        if payload.path is None:
            raise user_error("No picture was sent.")
        return read_upload(payload.path, Path(self.GRADIO_CACHE), max_bytes)

    def postprocess(self, value: np.ndarray | None) -> Base64ImageData | None:
        return None if value is None else Base64ImageData(url=jpeg_data_url(value))


def fresh_cache_dir(folder: Path = CACHE_DIR) -> Path:
    """Empty ``folder`` (what a previous process left) and point Gradio's uploads at it.

    Call before build_demo and launch: Gradio reads GRADIO_TEMP_DIR when they run.
    """
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(mode=0o700, parents=True)
    os.environ["GRADIO_TEMP_DIR"] = str(folder)
    return folder


# ---------------------------------------------------------------- layout and wiring


def failed_status() -> str:
    return FAILED


def build_demo(models: Models) -> Any:
    """The Blocks app bound to loaded models (call fresh_cache_dir first when serving it)."""
    emotion_choices = [(FACE, FACE)] + [(DISPLAY_NAMES[e], e) for e in EMOTIONS]
    # delete_cache: unread uploads, and at shutdown every upload Gradio recorded; fresh_cache_dir does the rest.
    with gr.Blocks(title="emoreply", delete_cache=UPLOAD_SWEEP) as demo:
        detected = gr.State(None)
        smoothed = gr.State(None)
        gr.Markdown(
            "# emoreply — your reaction says it all\n"
            "Paste a message you received, show the camera how it makes you feel, and get a reply drafted "
            "in that emotion. Drafts are suggestions: edit before you send. If the browser blocks the "
            "camera, upload a photo or pick an emotion.\n\n" + PICTURES_NOTE
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
                    camera = MemoryImage(label="Webcam or photo", sources=["webcam", "upload"])
                    preview = MemoryImage(label="Face used", interactive=False, height=240)
                with gr.Tab("Live"):
                    live_camera = MemoryImage(label="Live webcam", sources=["webcam"], streaming=True)
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

        # Each event raises gr.Error with the words for input it cannot use (as_event); its .failure()
        # then puts a pointer to them in the page's status line.
        read_outputs = [preview, probabilities, status, detected]
        camera.change(
            as_event(partial(read_face, models), 2),
            camera,
            read_outputs,
            concurrency_limit=4,
            trigger_mode="always_last",
            api_name="read_face",
        ).failure(failed_read, None, read_outputs, queue=False, api_visibility="private")
        # A stream holds a slot for LIVE_SECONDS, even after its client has gone; the page then opens a
        # new one through the queue, so abandoned streams block Live for seconds, not minutes, and a
        # client gets one stream at a time (LiveClients), so one client cannot hold several slots.
        live_camera.stream(
            live_event(models, LiveClients()),
            [live_camera, smoothed],
            [probabilities, status, smoothed, detected],
            stream_every=0.1,
            concurrency_limit=4,
            time_limit=LIVE_SECONDS,
            api_name="live",
        ).failure(failed_status, None, status, queue=False, api_visibility="private")
        draft_button.click(
            as_stream_event(partial(draft_replies, models), 3, check_draft_request),
            [message, choice, detected, history],
            [base_out, tuned_out, draft, notice],
            concurrency_limit=4,
            trigger_mode="once",
            api_name="draft",
        ).failure(failed_status, None, notice, queue=False, api_visibility="private")
        sweep_button.click(
            as_event(partial(sweep_replies, models), 1, check_request),
            [message, history],
            [sweep_table, sweep_notice],
            concurrency_limit=2,
            trigger_mode="once",
            api_name="sweep",
        ).failure(failed_status, None, sweep_notice, queue=False, api_visibility="private")
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


# Uploads above the limit are refused while they stream in, before Gradio writes them out.
LAUNCH_SETTINGS = {"max_file_size": f"{MAX_UPLOAD_MB}mb", "show_error": False}

if __name__ == "__main__":
    args = parse_args()
    fresh_cache_dir()
    build_demo(load_models(args.emotion_model, args.reply_model, args.base_model, args.precision)).launch(
        server_name=args.host, server_port=args.port, **LAUNCH_SETTINGS
    )
