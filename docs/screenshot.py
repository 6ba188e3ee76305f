"""The README's screenshot: the app with the bundled models, a photo uploaded, a reply drafted.

    PYTHONPATH=. python docs/screenshot.py [--output docs/app.png] [--message "..."]

Launches the app in-process on 127.0.0.1 and drives Debian's Chromium with playwright (as the
browser test does). The photo is scikit-image's astronaut (public domain), uploaded like a user would.
"""

from __future__ import annotations

import argparse
import io
import socket
import tempfile
from pathlib import Path

from PIL import Image
from skimage import data

import app

CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="docs/app.png")
    parser.add_argument("--message", default="We're getting a puppy this weekend!")
    args = parser.parse_args()
    app.fresh_cache_dir()
    demo = app.build_demo(app.load_models())
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **app.LAUNCH_SETTINGS)
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        photo = Path(tmp) / "astronaut.jpg"
        buffer = io.BytesIO()
        Image.fromarray(data.astronaut()).save(buffer, "JPEG", quality=90)
        photo.write_bytes(buffer.getvalue())
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(120_000)
        page.goto(f"http://127.0.0.1:{port}/")
        page.locator("input[type=file]").first.set_input_files(str(photo))
        page.get_by_text("Detected:").wait_for()
        page.get_by_label("Message you received").fill(args.message)
        page.get_by_role("button", name="Draft reply").click()
        tuned = page.get_by_label("Fine-tuned (emoreply)")
        page.wait_for_function("e => e.value.trim().length > 0", arg=tuned.element_handle())
        page.get_by_text("All emotions").click()  # open the sweep of all seven emotions
        count = "name => document.body.innerText.split(name).length - 1"
        before = page.evaluate(count, app.DISPLAY_NAMES["fear"])
        page.get_by_role("button", name="Draft in every emotion").click()
        page.wait_for_function(f"({count})({app.DISPLAY_NAMES['fear']!r}) > {before}")  # the sweep's rows
        page.screenshot(path=args.output, full_page=True)
        browser.close()
    demo.close()
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
