"""The README's Python quick start runs as written, offline, on the bundled models."""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_api_snippet_runs(face_rgb, tmp_path, monkeypatch):
    text = README.read_text()
    snippet = re.search(r"Python API:\n\n```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    Image.fromarray(face_rgb).save("photo.jpg")  # the snippet reads "photo.jpg"
    namespace: dict = {}
    exec(compile(snippet, "README.md", "exec"), namespace)  # noqa: S102 (our own README)
    reading = namespace["reading"]
    assert reading.face_found and reading.emotion in namespace["reader"].model.config.id2label.values()
    sweep = namespace["drafter"].sweep("I got the job!!")
    assert len(sweep) == 7 and all(isinstance(reply, str) and reply for reply in sweep.values())
