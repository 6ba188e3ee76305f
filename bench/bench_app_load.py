"""The Gradio app under load: start-up time, then N concurrent gradio_client clients x M /draft requests.

python -m bench.bench_app_load [--clients 20] [--requests 10]
                               [--emotion-model PATH] [--reply-model PATH] [--base-model ID|none]

The app is launched in-process on 127.0.0.1 (bundled models and the default base model unless told
otherwise), exactly as app.py builds it: demo.queue(max_size=64, default_concurrency_limit=4) and
/draft's concurrency_limit=4. Each client keeps one request outstanding, so the queue holds at most
`--clients` jobs; with more than 64 clients the surplus is refused ("queue full") and shows up as
failed requests. Reports failed requests (should be 0), p50/p95 latency, throughput, and peak RSS.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from bench.common import peak_rss_mb, table

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

MESSAGES = [
    "How is your day going?",
    "I got the job!!",
    "Sorry, I can't make it to dinner tonight.",
    "Did you eat the last slice of cake?",
    "My cat has been missing since Tuesday.",
]
CHOICES = ["happy", "sad", "angry", "surprise", "neutral", "fear", "disgust"]
QUEUE_MAX_SIZE = 64  # app.build_demo: demo.queue(max_size=64, ...)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


class PeakRSS:
    """Samples this process's RSS every 50 ms in a thread (server and clients share the process)."""

    def __init__(self) -> None:
        self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_mb())

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


def start_app(emotion_model: str | None, reply_model: str | None, base_model: str | None) -> tuple:
    """(demo, url, seconds per phase): import, load_models, build_demo, launch until HTTP answers."""
    import httpx

    times = {}
    start = time.perf_counter()
    import app  # imports gradio

    times["import app + gradio"] = time.perf_counter() - start
    mark = time.perf_counter()
    models = app.load_models(emotion_model, reply_model, base_model)
    times["load_models"] = time.perf_counter() - mark
    mark = time.perf_counter()
    app.fresh_cache_dir()  # as app.py's main: a private Gradio cache, emptied
    demo = app.build_demo(models)
    times["build_demo"] = time.perf_counter() - mark
    mark = time.perf_counter()
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **app.LAUNCH_SETTINGS)
    url = f"http://127.0.0.1:{port}/"
    while True:
        try:
            if httpx.get(url + "config", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    times["launch until HTTP answers"] = time.perf_counter() - mark
    times["total start-up"] = time.perf_counter() - start
    return demo, url, times, models


def run_client(url: str, index: int, requests: int, barrier: threading.Barrier) -> tuple[list[float], list[str]]:
    """One client: connect, wait for the others, then `requests` sequential /draft calls."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    latencies, errors = [], []
    barrier.wait()
    for i in range(requests):
        message = MESSAGES[(index + i) % len(MESSAGES)]
        choice = CHOICES[(index * requests + i) % len(CHOICES)]
        start = time.perf_counter()
        try:
            base, tuned, draft, notice = client.predict(message, choice, "", api_name="/draft")
            if notice.startswith("⚠️") or draft != tuned:
                raise RuntimeError(f"unexpected answer: {notice!r}")
        except Exception as err:  # counted, never fatal: the report says what failed
            errors.append(f"{type(err).__name__}: {str(err)[:80]}")
            continue
        latencies.append((time.perf_counter() - start) * 1000)
    client.close()
    return latencies, errors


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--emotion-model", default=None, help="default: bundled")
    parser.add_argument("--reply-model", default=None, help="default: bundled")
    parser.add_argument("--base-model", default=None, help="Hub id or folder; 'none' to skip (default: app's base)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=10, help="per client")
    args = parser.parse_args(argv)
    if args.base_model is None:
        from emoreply.reply import DEFAULT_BASE_MODEL_ID

        args.base_model = DEFAULT_BASE_MODEL_ID

    demo, url, startup, models = start_app(args.emotion_model, args.reply_model, args.base_model)
    try:
        idle_rss = rss_mb()
        started: list[float] = []  # the load starts when every client has connected
        barrier = threading.Barrier(args.clients, action=lambda: started.append(time.perf_counter()))
        with PeakRSS() as peak, ThreadPoolExecutor(args.clients) as pool:
            futures = [pool.submit(run_client, url, i, args.requests, barrier) for i in range(args.clients)]
            results = [f.result() for f in futures]
            wall = time.perf_counter() - started[0]
    finally:
        demo.close()

    latencies = [x for lat, _ in results for x in lat]
    errors = Counter(e for _, errs in results for e in errs)
    total = args.clients * args.requests
    base_note = "base: none" if models.drafter.base_model is None else "base + fine-tuned per request"
    rows = []
    if latencies:
        rows.append(
            {
                "name": f"/draft, {args.clients} clients x {args.requests} requests",
                "median_ms": statistics.median(latencies),
                "p95_ms": percentile(latencies, 0.95),
                "note": f"{len(latencies) / wall:.2f} req/s; {base_note}",
            }
        )
    max_rss_mb = peak_rss_mb()
    lines = [
        table(rows, "App under load (gradio_client -> queue -> /draft)") if rows else "### App under load: no success",
        "",
        "| measure | value |",
        "|---|---|",
        f"| requests (failed) | {total} ({sum(errors.values())}) |",
        f"| wall time of the load | {wall:.1f} s |",
        f"| throughput | {len(latencies) / wall:.2f} req/s |",
        f"| latency p50 / p95 / max | {statistics.median(latencies) if latencies else float('nan'):.0f} / "
        f"{percentile(latencies, 0.95) if latencies else float('nan'):.0f} / "
        f"{max(latencies, default=float('nan')):.0f} ms |",
        f"| RSS after start-up / peak under load | {idle_rss:.0f} / {peak.peak:.0f} MiB |",
        f"| peak RSS of the process (VmHWM) | {max_rss_mb:.0f} MiB |",
        f"| most jobs in the queue (1 per client) | {args.clients} of max_size {QUEUE_MAX_SIZE} |",
    ]
    lines += [f"| start-up: {phase} | {seconds:.2f} s |" for phase, seconds in startup.items()]
    for error, count in errors.most_common(5):
        lines.append(f"| failure x{count} | {error} |")
    out = "\n".join(lines)
    print(out)
    return out


if __name__ == "__main__":
    main()
