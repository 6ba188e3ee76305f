"""A spy on what each process trains on, for tests/test_distributed_training.py (not a test module).

    python tests/training_spy.py RECORDS.jsonl train/train_emotion_cnn.py --output_dir ...   # under a launcher

Each training batch appends {"rank", "epoch", "ids"} to RECORDS.jsonl.rankN; ids fingerprint the
samples (an image's bytes, a reply's label tokens). ``SPY_KILL=E:S`` SIGKILLs process 0 after batch S
of epoch E: a worker killed mid-epoch, as by the OOM killer or a pre-empted machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _ids(rows) -> list[str]:
    return [hashlib.sha1(row.contiguous().numpy().tobytes()).hexdigest()[:12] for row in rows]


def install(module, records: Path, setattr=setattr) -> None:
    """Patch ``module`` (a loaded train/ script) so that each training batch is recorded."""
    rank = int(os.environ.get("RANK", 0))
    kill = tuple(int(x) for x in os.environ["SPY_KILL"].split(":")) if os.environ.get("SPY_KILL") else None
    seen = {"epoch": 0, "step": 0}
    file = Path(f"{records}.rank{rank}")

    def record(ids: list[str]) -> None:
        seen["step"] += 1
        with file.open("a") as f:
            f.write(json.dumps({"rank": rank, "epoch": seen["epoch"], "ids": ids}) + "\n")
        if kill == (seen["epoch"], seen["step"]) and rank == 0:
            os.kill(os.getpid(), signal.SIGKILL)

    real_tqdm = module.tqdm

    def tqdm(*args, desc: str = "", **kwargs):  # the training loop's bar names the epoch
        if desc.startswith("epoch "):
            seen["epoch"], seen["step"] = int(desc.split()[1].split("/")[0]), 0
        return real_tqdm(*args, desc=desc, **kwargs)

    setattr(module, "tqdm", tqdm)
    if hasattr(module, "training_batch"):  # emotion CNN: the uint8 faces of the batch
        real_batch = module.training_batch

        def training_batch(images, *args, **kwargs):
            record(_ids(images.cpu()))
            return real_batch(images, *args, **kwargs)

        setattr(module, "training_batch", training_batch)
    else:  # reply model: the label tokens of each training pair
        real_losses = module.token_losses

        def token_losses(model, batch):
            if model.training:
                record(_ids([row[row != -100] for row in batch["labels"].cpu()]))
            return real_losses(model, batch)

        setattr(module, "token_losses", token_losses)


def read(records: Path) -> list[dict]:
    """All processes' records (rank files), in file order."""
    return [json.loads(line) for f in sorted(records.parent.glob(records.name + ".rank*")) for line in f.open()]


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    from tests.conftest import load_script

    records, script, *argv = sys.argv[1:]
    module = load_script(script)
    install(module, Path(records))
    sys.argv = [script, *argv]
    module.main(argv)
