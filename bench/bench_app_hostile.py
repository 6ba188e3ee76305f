"""The app under hostile input: memory, error words, files left behind, Live slots (issue 15's targets).

python -m bench.bench_app_hostile [--clients 20] [--requests 10]

One in-process app (bundled models, no base model) as app.py serves it. In order:
1. normal load: N gradio_client clients x M requests, alternating /draft and /read_face with
   distinct webcam-sized JPEG frames (as real cameras give): failed requests and peak RSS;
2. hostile pictures: 9 of them (text named .png, truncated JPEG, 0 bytes, PNG headers claiming
   20,000x20,000 and 12,000x7,000, a 49 MP JPEG, a 49 MP PNG, a 24 MP PNG, a 16-bit PNG), 4 at a
   time: peak RSS, and whether each refusal came with words;
3. files in the cache once Gradio's sweep has run, and after a restart;
4. four Live streams that send one frame and leave: how long a fifth waits for its first answer.
RSS is sampled every 50 ms in this process (server and clients share it).
"""

from __future__ import annotations

import argparse
import base64
import io
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from bench.bench_app_load import PeakRSS, rss_mb, start_app
from tests.test_app_server import hostile_files  # the tests' catalogue: one list of cases

PATIENT = {"timeout": 120}  # gradio_client's default timeouts fire on a busy 2-core machine before the server answers


def webcam_frame(face: np.ndarray, seed: int) -> bytes:
    """A 640x480 JPEG of the face with sensor-like noise: no two frames are the same file."""
    rng = np.random.default_rng(seed)
    canvas = np.full((480, 640, 3), 128, np.uint8)
    canvas[:, 80:560] = np.asarray(Image.fromarray(face).resize((480, 480)))
    noisy = np.clip(canvas + rng.integers(-3, 4, canvas.shape), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(noisy).save(out, "JPEG", quality=90)
    return out.getvalue()


def hostile_pictures(face: np.ndarray, folder: Path) -> list[Path]:
    """The 9 files: 6 to be refused in words (the 49 MP PNG: above the app's cap on full-size decodes),
    3 to be read (the 49 MP JPEG at a reduced scale, the 24 MP PNG at full size, the 16-bit PNG)."""
    cases = [(name, content) for name, (content, _) in hostile_files(face).items()]
    big = np.zeros((7000, 7000, 3), np.uint8)
    big[2000:5000, 2000:5000] = np.asarray(Image.fromarray(face).resize((3000, 3000)))
    for name, pixels, fmt in (
        ("49mp.jpg", big, "JPEG"),
        ("49mp.png", big, "PNG"),
        ("24mp.png", big[:4800, :5000], "PNG"),
    ):
        out = io.BytesIO()
        Image.fromarray(pixels).save(out, fmt)
        cases.append((name, out.getvalue()))
    out = io.BytesIO()
    Image.fromarray(np.asarray(Image.fromarray(face).convert("L"), np.uint16) * 257).save(out, "PNG")
    cases.append(("16bit.png", out.getvalue()))
    for name, content in cases:
        (folder / name).write_bytes(content)
    return [folder / name for name, _ in cases]


def read_face(client, path: Path) -> str:
    """The outcome in a word: "ok", "refused: <words>", or "BARE ERROR" when no words came."""
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    try:
        client.predict(handle_file(str(path)), api_name="/read_face")
        return "ok"
    except AppError as err:
        return f"refused: {err}" if str(err).strip() and str(err) != "None" else "BARE ERROR"


def normal_load(url: str, face: np.ndarray, folder: Path, clients: int, requests: int) -> list[str]:
    """Failures (empty when all succeeded) over clients x requests, half /draft, half /read_face."""
    from gradio_client import Client

    connected = [
        Client(url, verbose=False, httpx_kwargs=PATIENT) for _ in range(clients)
    ]  # one by one: 20 at once time out on 2 cores

    def one_client(index: int) -> list[str]:
        client, failures = connected[index], []
        for i in range(requests):
            try:
                if i % 2:
                    client.predict("How is your day going?", "happy", "", api_name="/draft")
                else:
                    frame = folder / f"frame-{index}-{i}.jpg"
                    frame.write_bytes(webcam_frame(face, index * requests + i))
                    if (outcome := read_face(client, frame)) != "ok":
                        failures.append(outcome)
            except Exception as err:  # counted: the report says what failed
                failures.append(f"{type(err).__name__}: {err}")
        client.close()
        return failures

    with ThreadPoolExecutor(clients) as pool:
        return [f for result in pool.map(one_client, range(clients)) for f in result]


def abandoned_live_wait(url: str, face: np.ndarray) -> float:
    """Seconds until a fifth Live client gets its first answer after four sent a frame and left."""
    frame = {
        "url": "data:image/jpeg;base64," + base64.b64encode(webcam_frame(face, 0)).decode(),
        "meta": {"_type": "gradio.FileData"},
    }
    fn_index = next(d["id"] for d in httpx.get(f"{url}config").json()["dependencies"] if d["api_name"] == "live")

    def join(session: str) -> None:
        body = {"data": [frame, None], "fn_index": fn_index, "session_hash": session, "trigger_id": None}
        httpx.post(f"{url}gradio_api/queue/join", json=body, timeout=30).raise_for_status()

    for i in range(4):
        join(f"abandoned{i}")
    time.sleep(0.5)
    start = time.monotonic()
    join("fifth")
    with httpx.stream("GET", f"{url}gradio_api/queue/data", params={"session_hash": "fifth"}, timeout=60) as r:
        next(line for line in r.iter_lines() if "process_streaming" in line or "process_completed" in line)
    return time.monotonic() - start


def cached_files(folder: Path) -> int:
    return sum(p.is_file() for p in folder.rglob("*"))


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=10, help="per client")
    args = parser.parse_args(argv)
    from skimage import data

    import app

    face = data.astronaut()
    work = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    pictures = hostile_pictures(face, work)  # before any measuring: making them costs this process memory
    demo, url, _, _ = start_app(None, None, "none")
    try:
        idle = rss_mb()
        with PeakRSS() as normal_peak:
            failures = normal_load(url, face, work, args.clients, args.requests)
        from gradio_client import Client

        hostile_clients = [
            Client(url, verbose=False, httpx_kwargs=PATIENT) for _ in range(4)
        ]  # a gradio_client is one job at a time
        with PeakRSS() as hostile_peak, ThreadPoolExecutor(4) as pool:
            outcomes = list(pool.map(read_face, hostile_clients * 3, pictures))
        after_hostile = rss_mb()
        live_wait = abandoned_live_wait(url, face)
        time.sleep(app.READ_GRACE + 1)  # every upload here was read: all deleted by now
        left_after_sweep = cached_files(app.CACHE_DIR)
    finally:
        demo.close()
    left_after_shutdown = cached_files(app.CACHE_DIR)
    app.fresh_cache_dir()
    left_after_restart = cached_files(app.CACHE_DIR)

    total = args.clients * args.requests
    lines = [
        "### App under hostile input (bench_app_hostile.py)",
        "",
        "| measure | value |",
        "|---|---|",
        f"| normal load: {args.clients} clients x {args.requests} (half /draft, half /read_face), failed | "
        f"{total} ({len(failures)}) |",
        f"| RSS after start-up / peak under the normal load | {idle:.0f} / {normal_peak.peak:.0f} MiB |",
        f"| peak RSS under the {len(pictures)} hostile pictures, 4 at a time / RSS after | {hostile_peak.peak:.0f} / "
        f"{after_hostile:.0f} MiB |",
        f"| hostile peak - normal peak (target <= 200 MB) | {hostile_peak.peak - normal_peak.peak:+.0f} MiB |",
        f"| hostile pictures refused without words (bare errors) | {outcomes.count('BARE ERROR')} of {len(outcomes)} |",
        f"| files in the cache after the sweep / after shutdown / after restart | {left_after_sweep} / "
        f"{left_after_shutdown} / {left_after_restart} |",
        f"| a 5th Live client after 4 abandoned streams: first answer after | {live_wait:.1f} s |",
    ]
    lines += [f"| {path.name} | {outcome[:110]} |" for path, outcome in zip(pictures, outcomes, strict=True)]
    lines += [f"| failure | {failure[:110]} |" for failure in failures[:5]]
    out = "\n".join(lines)
    print(out)
    return out


if __name__ == "__main__":
    main()
