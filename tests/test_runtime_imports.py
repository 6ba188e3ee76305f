"""The runtime (app.py and emoreply/ outside emoreply/training/) never imports the training side."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Distributions of the [train] extra that none of the runtime's own dependencies imports.
TRAINING_PACKAGES = {"accelerate", "datasets", "sklearn", "scipy", "matplotlib", "optuna", "sacrebleu", "skimage"}


def runtime_modules() -> list[str]:
    """app and every module of emoreply/ but emoreply.training (pretrained/ holds model folders, not modules)."""
    package = ROOT / "emoreply"
    names = ["app"]
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[1] in ("training", "pretrained"):
            continue
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


# transformers imports accelerate whenever it is installed, so what the runtime's dependencies import
# on their own is taken first; what importing the runtime adds on top of that is what is checked.
# An audit hook records every file opened from then on: importing must not load models or write.
PROBE = """
import json, os, sys
import gradio, torch, transformers
from transformers import LogitsProcessor, PreTrainedModel
sys.dont_write_bytecode = True  # the import system's own cache writes are not the runtime's
before = set(sys.modules)
opened = []
sys.addaudithook(lambda event, args: opened.append(args) if event == "open" else None)
for name in sys.argv[1:]:
    __import__(name)
WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND
print(json.dumps({
    "before": sorted(before),
    "added": sorted(set(sys.modules) - before),
    "read": [str(path) for path, *_ in opened if isinstance(path, (str, os.PathLike))],
    "written": [
        str(path) for path, mode, flags in opened
        if (set(mode or "") & set("wax+")) or (mode is None and isinstance(flags, int) and flags & WRITE)
    ],
}))
"""


def test_importing_the_runtime_loads_no_training_code_and_no_files():
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *runtime_modules()], cwd=ROOT, capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout.splitlines()[-1])
    added = set(result["added"])
    assert {"app", "emoreply.reply.drafter", "emoreply.reply.cpu_layout"} <= added  # the probe imported them
    assert not [name for name in added if name.startswith("emoreply.training")]
    assert not {name.split(".")[0] for name in added} & TRAINING_PACKAGES
    # The baseline itself must not hide a training package the runtime would otherwise have pulled in.
    assert not {name.split(".")[0] for name in result["before"]} & (TRAINING_PACKAGES - {"accelerate", "scipy"})
    assert result["written"] == []
    pretrained = [path for path in result["read"] if str(ROOT / "emoreply" / "pretrained") in path]
    assert pretrained == []  # no model is loaded at import time
