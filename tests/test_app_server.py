"""app.py served for real: the HTTP API through gradio_client, and the page in headless Chromium.

The app is launched in-process on 127.0.0.1 (a free port) with the tiny fixture models. The browser
test drives Debian's /usr/bin/chromium through the `playwright` package, with a fake webcam that
plays a .y4m video made from the astronaut photo; it is skipped (saying why) when either is missing.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import app
from emoreply import DISPLAY_NAMES, EMOTIONS
from emoreply.reader import EmotionReader
from emoreply.reply import ReplyDrafter

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no phoning home from the test server

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
MESSAGE = "How is your day going?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """The app's private Gradio cache (as app.py's main sets it up), restored afterwards."""
    before = os.environ.get("GRADIO_TEMP_DIR")
    folder = tmp_path_factory.mktemp("server") / "emoreply-gradio"
    (folder / "stale").mkdir(parents=True)
    (folder / "stale" / "image.png").write_bytes(b"left by an earlier process")
    yield app.fresh_cache_dir(folder)
    if before is None:
        os.environ.pop("GRADIO_TEMP_DIR", None)
    else:
        os.environ["GRADIO_TEMP_DIR"] = before


def cached_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def wait_until_empty(folder: Path) -> list[Path]:
    """The files still in ``folder`` once every upload read by a request has had its time (app.READ_GRACE)."""
    deadline = time.monotonic() + app.READ_GRACE + 5
    while cached_files(folder) and time.monotonic() < deadline:
        time.sleep(0.5)
    return cached_files(folder)


@pytest.fixture(scope="module")
def server(tiny_emotion_model_dir, tiny_model_dir, cache_dir):
    """The app on http://127.0.0.1:<free port>/; the tiny T5 also stands in for the base model."""
    drafter = ReplyDrafter.from_pretrained(tiny_model_dir)
    models = app.Models(
        EmotionReader.from_pretrained(tiny_emotion_model_dir), drafter, drafter.base_drafter(tiny_model_dir)
    )
    demo = app.build_demo(models)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **app.LAUNCH_SETTINGS)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server, verbose=False)


# ---------------------------------------------------------------- HTTP API (gradio_client)
# gr.State inputs (the detected emotion) are not part of the API: /draft takes (message, choice, history).


def test_api_draft_returns_both_drafts_and_the_emotion_used(client):
    base, tuned, draft, notice = client.predict(MESSAGE, "happy", "", api_name="/draft")
    assert isinstance(base, str) and base and isinstance(tuned, str) and tuned and draft == tuned
    assert "Happy" in notice and "chosen by you" in notice


def test_api_draft_refuses_bad_input_in_words(client, server):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="empty"):
        client.predict("   ", "sad", "", api_name="/draft")
    with pytest.raises(AppError, match="Unknown emotion None"):
        client.predict(MESSAGE, None, "", api_name="/draft")
    # gradio_client cannot even encode a lone surrogate; a raw HTTP client can (JSON escapes it).
    event, message = call_raw(server, "draft", ["hi \ud800", "happy", ""])
    assert event == "error" and "unpaired surrogate" in message
    event, message = call_raw(server, "sweep", ["hi", "\udfff"])
    assert event == "error" and "earlier turns" in message


def call_raw(server: str, api: str, data: list) -> tuple[str, str]:
    """POST /call/<api> as any HTTP client would, then its result: (SSE event name, its data)."""
    import json

    import httpx

    body = json.dumps({"data": data})  # ASCII with \u escapes: how a lone surrogate travels in JSON
    headers = {"Content-Type": "application/json"}
    event_id = httpx.post(f"{server}gradio_api/call/{api}", content=body, headers=headers, timeout=30).json()[
        "event_id"
    ]
    with httpx.stream("GET", f"{server}gradio_api/call/{api}/{event_id}", timeout=30) as response:
        lines = [line for line in response.iter_lines() if line]
    event = lines[-2].removeprefix("event: ")
    payload = json.loads(lines[-1].removeprefix("data: "))
    return event, payload if isinstance(payload, str) else json.dumps(payload)


def test_api_sweep_gives_one_row_per_emotion(client):
    table, notice = client.predict(MESSAGE, "Hi!\nHello.", api_name="/sweep")
    rows = table["data"]
    assert notice == "" and len(rows) == 7
    assert [r[0] for r in rows] == [DISPLAY_NAMES[e] for e in EMOTIONS] and all(r[1] for r in rows)


def data_url_image(preview: dict) -> Image.Image:
    header, _, payload = preview["url"].partition(",")
    assert header == "data:image/jpeg;base64"
    return Image.open(io.BytesIO(base64.b64decode(payload)))


def test_api_read_face_from_an_uploaded_jpeg(client, face_rgb, tmp_path, cache_dir):
    from gradio_client import handle_file

    assert cached_files(cache_dir) == []  # the start-up sweep removed the earlier process's file
    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(face_rgb).save(photo, quality=90)
    preview, label, status = client.predict(handle_file(str(photo)), api_name="/read_face")
    assert data_url_image(preview).size == (512, 512)  # inline: nothing written for it
    confidences = {c["label"]: c["confidence"] for c in label["confidences"]}
    assert set(confidences) == {DISPLAY_NAMES[e] for e in EMOTIONS}
    assert sum(confidences.values()) == pytest.approx(1, abs=1e-3)
    assert label["label"] in confidences and status.startswith("Detected:") and label["label"] in status


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims width x height and holds no pixels: refused from its header, or it would decode."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def hostile_files(face_rgb: np.ndarray) -> dict[str, tuple[bytes, str]]:
    """name -> (file content, words the refusal must contain)."""
    jpeg = io.BytesIO()
    Image.fromarray(face_rgb).save(jpeg, "JPEG")
    return {
        "text.png": (b"this is not a picture\n", "not a known image format"),
        "truncated.jpg": (jpeg.getvalue()[:2000], "truncated"),
        "empty.png": (b"", "not a known image format, or empty"),
        "huge.png": (png_header(20_000, 20_000), "far too large; the limit is 50 MP"),
        "wide.png": (png_header(12_000, 7_000), r"12000x7000 \(84 MP\); the limit is 50 MP"),
    }


def test_api_refuses_every_bad_picture_in_words_and_keeps_none(client, face_rgb, tmp_path, cache_dir):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    for name, (content, words) in hostile_files(face_rgb).items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(AppError, match=words):
            client.predict(handle_file(str(tmp_path / name)), api_name="/read_face")
    assert wait_until_empty(cache_dir) == []  # these and the earlier uploads


def test_api_reads_a_16_bit_png_without_saturating_it(client, face_rgb, tmp_path):
    from gradio_client import handle_file

    gray16 = (np.asarray(Image.fromarray(face_rgb).convert("L"), np.uint16) * 257).astype(np.uint16)
    Image.fromarray(gray16).save(tmp_path / "face16.png")
    assert Image.open(tmp_path / "face16.png").mode == "I;16"
    preview, _, status = client.predict(handle_file(str(tmp_path / "face16.png")), api_name="/read_face")
    assert status.startswith("Detected:")  # Gradio's RGB conversion clipped it to white: "No face found"
    assert np.asarray(data_url_image(preview)).mean() < 200


def test_uploads_above_the_limit_are_refused_before_they_are_stored(server, cache_dir):
    import httpx

    big = b"\0" * (app.MAX_UPLOAD_MB * 2**20 + 1)
    response = httpx.post(f"{server}gradio_api/upload", files={"files": ("big.png", big)}, timeout=60)
    assert response.status_code == 413 and not any(p.name == "big.png" for p in cached_files(cache_dir))


def test_abandoned_live_streams_hold_one_slot_per_client_and_free_it_within_seconds(server, face_rgb):
    """One client opens four Live streams and never reads them: it gets one slot, the other three are
    refused in words, and another client (127.0.0.2) is served at once; after LIVE_LEASE the first
    client may stream again."""
    import httpx

    jpeg = io.BytesIO()
    Image.fromarray(face_rgb).save(jpeg, "JPEG")
    frame = {
        "url": "data:image/jpeg;base64," + base64.b64encode(jpeg.getvalue()).decode(),
        "meta": {"_type": "gradio.FileData"},
    }
    config = httpx.get(f"{server}config", timeout=30).json()
    fn_index = next(d["id"] for d in config["dependencies"] if d["api_name"] == "live")

    def client(address: str) -> httpx.Client:
        return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30)

    def join(http: httpx.Client, session: str) -> None:
        body = {"data": [frame, None], "fn_index": fn_index, "session_hash": session, "event_data": None}
        http.post(f"{server}gradio_api/queue/join", json={**body, "trigger_id": None}).raise_for_status()

    def first_answer(http: httpx.Client, session: str) -> dict:
        """The first streamed result or completion message of ``session``'s event."""
        with http.stream("GET", f"{server}gradio_api/queue/data", params={"session_hash": session}) as r:
            for line in r.iter_lines():
                message = json.loads(line.removeprefix("data: ")) if line.startswith("data: ") else {}
                if message.get("msg") in ("process_streaming", "process_completed"):
                    return message
        return {}

    with client("127.0.0.1") as one, client("127.0.0.2") as other:
        for i in range(4):
            join(one, f"abandoned{i}")
        refused = first_answer(one, "abandoned3")
        assert refused["success"] is False and "already running in another tab" in refused["output"]["error"]
        time.sleep(0.3)
        start = time.monotonic()
        join(other, "another-client")
        served = first_answer(other, "another-client")
        assert served.get("success", True) and "Live:" in json.dumps(served["output"])  # a reading, not an error
        assert time.monotonic() - start < 5
        time.sleep(app.LIVE_LEASE)
        join(one, "back-again")
        assert first_answer(one, "back-again").get("success", True)
    time.sleep(app.LIVE_LEASE)  # leave this address free for the browser test's Live stream


def test_an_upload_is_deleted_seconds_after_it_is_read_whatever_its_age(cache_dir, monkeypatch):
    monkeypatch.setattr(app, "READ_GRACE", 0.5)
    queued, again = cache_dir / "queued" / "photo.png", cache_dir / "again" / "photo.png"
    for file in (queued, again):
        file.parent.mkdir()
        file.write_bytes(b"picture")
    assert app.read_upload(str(queued), cache_dir, 100) == b"picture"
    assert app.read_upload(str(again), cache_dir, 100) == b"picture"
    assert queued.exists()  # the page may still be fetching it to show it
    again.unlink()
    again.write_bytes(b"picture")  # the same bytes uploaded again, for a request still queued
    time.sleep(1.5)
    assert not queued.parent.exists() and again.exists()
    again.unlink()
    again.parent.rmdir()


def test_an_upload_never_submitted_is_gone_after_shutdown(server, cache_dir, tiny_emotion_model_dir, tiny_model_dir):
    import httpx

    models = app.Models(
        EmotionReader.from_pretrained(tiny_emotion_model_dir), ReplyDrafter.from_pretrained(tiny_model_dir)
    )
    demo = app.build_demo(models)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **app.LAUNCH_SETTINGS)
    response = httpx.post(
        f"http://127.0.0.1:{port}/gradio_api/upload", files={"files": ("x.png", b"orphan")}, timeout=30
    )
    orphan = Path(response.json()[0])
    assert orphan.is_file() and orphan.is_relative_to(cache_dir)
    demo.close()
    assert not orphan.exists()


# ---------------------------------------------------------------- a real browser (headless Chromium)


def write_y4m(path: Path, rgb: np.ndarray, frames: int = 5, width: int = 640, height: int = 480) -> Path:
    """A fake-camera video: the photo centred on grey, as 4:2:0 YCbCr (JPEG range) Y4M frames."""
    canvas = Image.new("RGB", (width, height), (128, 128, 128))
    side = min(width, height)
    canvas.paste(Image.fromarray(rgb).resize((side, side)), ((width - side) // 2, (height - side) // 2))
    y, cb, cr = canvas.convert("YCbCr").split()
    half = (width // 2, height // 2)
    frame = b"FRAME\n" + y.tobytes() + cb.resize(half).tobytes() + cr.resize(half).tobytes()
    path.write_bytes(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode() + frame * frames)
    return path


def test_y4m_has_the_right_size(tmp_path, face_rgb):
    path = write_y4m(tmp_path / "face.y4m", face_rgb, frames=3)
    header, _, body = path.read_bytes().partition(b"\n")
    assert header.startswith(b"YUV4MPEG2 W640 H480") and len(body) == 3 * (6 + 640 * 480 * 3 // 2)


needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)"
)


@contextlib.contextmanager
def browser_page(server: str, face_rgb: np.ndarray, folder: Path, screenshot: str):
    """The app open in headless Chromium whose fake webcam plays the face; a screenshot at the end, even on failure."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing")
    video = write_y4m(folder / "face.y4m", face_rgb)
    args = [
        "--no-sandbox", "--headless", "--disable-gpu",
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
    ]  # fmt: skip
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(20_000)
        try:
            page.goto(server)
            yield page
        finally:
            artifacts = ROOT / "artifacts"
            artifacts.mkdir(exist_ok=True)
            with contextlib.suppress(sync_api.Error):  # a screenshot must not hide the test's own failure
                page.screenshot(path=str(artifacts / screenshot), full_page=True, timeout=5_000)
            browser.close()


def start_webcam(page, live: bool) -> None:
    """Gradio 6's webcam: "Click to Access Webcam" opens the stream; wait until the fake camera plays."""
    buttons = page.get_by_role("button", name="Click to Access Webcam")
    access = buttons.last if live else buttons.first
    access.wait_for()
    access.click()
    page.wait_for_function("[...document.querySelectorAll('video')].some(v => v.readyState >= 2)")


@needs_chromium
def test_browser_snapshot_then_draft(server, face_rgb, tmp_path, cache_dir):
    start = time.monotonic()
    with browser_page(server, face_rgb, tmp_path, "app_browser.png") as page:
        start_webcam(page, live=False)
        # Capture only once the fake camera is playing, or the snapshot is empty.
        page.locator('button[aria-label="capture photo"]').first.click()
        page.get_by_text("Detected:").wait_for()
        # The page shows the snapshot from the server's copy, which outlives the read by READ_GRACE.
        shown = page.locator("div.block").filter(has_text="Webcam or photo").locator("img").first
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=shown.element_handle())
        preview_src = page.locator("div.block").filter(has_text="Face used").locator("img").first.get_attribute("src")
        page.get_by_label("Message you received").fill(MESSAGE)
        page.get_by_role("button", name="Draft reply").click()
        base, tuned = page.get_by_label("Base model (not fine-tuned)"), page.get_by_label("Fine-tuned (emoreply)")
        page.wait_for_function(
            "els => els.every(e => e.value.trim().length > 0)", arg=[base.element_handle(), tuned.element_handle()]
        )
        page.get_by_text("read from your face").wait_for()
        status = page.get_by_text("Detected:").inner_text()
        label = page.locator("div.block").filter(has_text="Emotion probabilities").last.inner_text()
        draft = page.locator("label").filter(has_text="Your draft").locator("textarea")
        values = base.input_value(), tuned.input_value(), draft.input_value()
    assert "%" in status and any(DISPLAY_NAMES[e] in status for e in EMOTIONS)
    assert all(DISPLAY_NAMES[e] in label for e in EMOTIONS) and label.count("%") == 7, label
    assert all(v.strip() for v in values) and values[1] == values[2]
    assert preview_src.startswith("data:image/jpeg;base64,")
    assert time.monotonic() - start < 60


@needs_chromium
def test_browser_bad_pictures_get_words_and_live_keeps_going(server, face_rgb, tmp_path, cache_dir):
    """Each hostile upload: its reason in a toast and the status line pointing to it; then Live past its time limit."""
    files = hostile_files(face_rgb)
    for name, (content, _) in files.items():
        (tmp_path / name).write_bytes(content)
    with browser_page(server, face_rgb, tmp_path, "app_browser_errors.png") as page:
        toasts = []
        for name, (_, words) in files.items():
            page.locator("input[type=file]").first.set_input_files(str(tmp_path / name))
            toast = page.get_by_text(re.compile(words)).first  # each refusal's words are its own
            toast.wait_for()
            toasts.append(toast.inner_text())
            page.get_by_text(app.FAILED.removeprefix(app.WARNING).strip()).wait_for()

        joins = []
        page.on("request", lambda r: joins.append(r.url) if "queue/join" in r.url else None)
        page.get_by_role("tab", name="Live").click()
        start_webcam(page, live=True)
        page.locator('button:visible[aria-label="capture photo"]').first.click()  # "Record"
        page.get_by_text("Live:").wait_for()
        time.sleep(2 * app.LIVE_SECONDS + 1)  # each stream ends after LIVE_SECONDS; the page opens the next
        live_status = page.get_by_text("Live:").first.inner_text()
    assert wait_until_empty(cache_dir) == []  # the snapshot (earlier test) and these uploads
    assert len(toasts) == len(files) and all(t.strip() for t in toasts)
    assert len(joins) >= 3, joins
    assert any(DISPLAY_NAMES[e] in live_status for e in EMOTIONS)
