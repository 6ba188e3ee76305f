"""Both training scripts as 2 data-parallel CPU processes (gloo), launched the way the README says.

Each run: one output folder, every training sample seen once per epoch across the processes,
results within tolerance of a 1-process run with the same global batch, and a resume after a
process is SIGKILLed mid-epoch. Tiny data and models: each script's launches take ~15-30 s.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from emoreply.training.common import sorted_checkpoints

from . import training_spy
from .conftest import ROOT, TINY_T5, load_script


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(records: Path, script: str, args: list[str], kill: str | None = None, processes: int = 2):
    """``accelerate launch --multi_gpu --num_processes N`` of the script under the spy."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("SPY_KILL", None)
    if kill:
        env["SPY_KILL"] = kill
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
        "--main_process_port", str(free_port()), "tests/training_spy.py", str(records), script, *args,
    ]  # fmt: skip
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)


def by_epoch(records: list[dict]) -> dict[int, Counter]:
    out: dict[int, Counter] = {}
    for r in records:
        out.setdefault(r["epoch"], Counter()).update(r["ids"])
    return out


def history(out: Path) -> list[dict]:
    return json.loads((sorted_checkpoints(out)[-1] / "trainer_state.json").read_text())["history"]


def check_two_process_run(tmp_path, script, args, per_process_batch, epochs, kill, one_process_run, size):
    """Kill process 0 mid-epoch, resume, and compare with the 1-process run (same global batch)."""
    out = tmp_path / "two"
    common = [*args, "--output_dir", str(out), "--num_epochs", str(epochs), "--keep_checkpoints", "9"]
    killed = launch(tmp_path / "killed.jsonl", script, [*common, "--batch_size", str(per_process_batch)], kill)
    assert killed.returncode != 0, "the spy did not kill the run"
    assert [c.name for c in sorted_checkpoints(out)] == ["epoch_1"], killed.stderr[-3000:]
    resumed = launch(
        tmp_path / "resumed.jsonl",
        script,
        [*common, "--batch_size", str(per_process_batch), "--resume_from_checkpoint", "latest"],
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    # Two processes: accelerate set up gloo, and each saved its own RNG state in every checkpoint.
    assert {p.name for p in sorted_checkpoints(out)[-1].glob("random_states_*")} == {
        "random_states_0.pkl",
        "random_states_1.pkl",
    }
    # One output: a single set of exports and reports, printed once.
    assert resumed.stdout.count(f"epoch {epochs}: train_loss") == 1
    assert not list(out.glob("*.tmp")) and (out / "training_history.json").exists()

    # Every sample once per epoch: the processes' shards are disjoint and together the whole epoch.
    single = by_epoch(training_spy.read(tmp_path / "one.jsonl"))
    killed_records, resumed_records = (
        training_spy.read(tmp_path / "killed.jsonl"),
        training_spy.read(tmp_path / "resumed.jsonl"),
    )
    two = {**{e: c for e, c in by_epoch(killed_records).items() if e == 1}, **by_epoch(resumed_records)}
    assert sorted(two) == list(range(1, epochs + 1))
    for epoch, seen in two.items():
        assert sum(single[epoch].values()) == size, epoch
        assert seen == single[epoch], f"epoch {epoch}: the 2 processes did not see the 1-process run's samples"
        if epoch > 1:  # a whole epoch of the resumed run: half of it on each process
            per_rank = Counter(r["rank"] for r in resumed_records if r["epoch"] == epoch for _ in r["ids"])
            assert per_rank == {0: size // 2, 1: size // 2}

    # Results: the resumed 2-process run against the 1-process run with the same global batch.
    a, b = history(out), one_process_run
    assert [h["epoch"] for h in a] == list(range(1, epochs + 1))
    return a, b


def test_emotion_cnn_on_two_cpu_processes(fer_folder, tmp_path, monkeypatch):
    # No augmentation, dropout or class weights: what remains between 1 and 2 processes is BatchNorm over
    # 9 instead of 18 images (measured: train loss 2.4% apart by epoch 2). 126 training images = 7
    # global batches of 18: nothing dropped.
    args = ["--dataset", str(fer_folder), "--channels", "4", "8", "8", "--hidden_size", "16", "--seed", "1",
            "--no_progress", "--augment_strength", "0", "--conv_dropout", "0", "--fc_dropout", "0",
            "--class_weighting", "none", "--learning_rate", "3e-3"]  # fmt: skip
    module = load_script("train/train_emotion_cnn.py")
    training_spy.install(module, tmp_path / "one.jsonl", setattr=monkeypatch.setattr)
    module.main([*args, "--output_dir", str(tmp_path / "one"), "--num_epochs", "3", "--batch_size", "18"])
    single = history(tmp_path / "one")
    two, _ = check_two_process_run(tmp_path, "train/train_emotion_cnn.py", args, 9, 3, "2:3", single, 126)
    for x, y in zip(two, single, strict=True):
        assert x["train_images"] == y["train_images"] == 126
        assert x["train_loss"] == pytest.approx(y["train_loss"], rel=0.05), (two, single)
        assert x["val_accuracy"] == pytest.approx(y["val_accuracy"], abs=0.15)


@pytest.fixture(scope="module")
def no_dropout_t5(tmp_path_factory, tiny_tokenizer) -> Path:
    """A tiny random T5 without dropout, in a folder (as a pretrained --model_name_or_path)."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    config = T5Config(**TINY_T5, dropout_rate=0.0, vocab_size=len(tiny_tokenizer), pad_token_id=0, eos_token_id=1,
                      decoder_start_token_id=0)  # fmt: skip
    folder = tmp_path_factory.mktemp("t5-no-dropout")
    T5ForConditionalGeneration(config).save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    return folder


def test_reply_model_on_two_cpu_processes(dailydialog_dir, no_dropout_t5, tmp_path, monkeypatch):
    # 48 pairs = 3 global batches of 16: nothing padded or repeated across processes.
    args = ["--dataset", str(dailydialog_dir), "--model_name_or_path", str(no_dropout_t5), "--seed", "1",
            "--no_progress", "--max_train_samples", "48", "--learning_rate", "3e-3", "--warmup_ratio", "0"]  # fmt: skip
    module = load_script("train/train_reply.py")
    training_spy.install(module, tmp_path / "one.jsonl", setattr=monkeypatch.setattr)
    module.main([*args, "--output_dir", str(tmp_path / "one"), "--num_epochs", "2", "--batch_size", "16"])
    single = history(tmp_path / "one")
    two, _ = check_two_process_run(tmp_path, "train/train_reply.py", args, 8, 2, "2:1", single, 48)
    for x, y in zip(two, single, strict=True):
        assert x["train_pairs"] == y["train_pairs"] == 48
        assert x["train_loss"] == pytest.approx(y["train_loss"], rel=0.01)
        assert x["val_loss"] == pytest.approx(y["val_loss"], rel=0.01)
    assert (tmp_path / "two" / "model.safetensors").exists() and (tmp_path / "two" / "test_results.json").exists()


def test_a_launch_that_would_not_be_distributed_is_refused(fer_folder, tmp_path):
    # accelerate's plain launcher starts one process for --num_processes 2 on a machine without GPUs.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2",
           "train/train_emotion_cnn.py", "--dataset", str(fer_folder), "--output_dir", str(tmp_path / "x")]  # fmt: skip
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "accelerate launch --multi_gpu --num_processes N" in run.stderr
    assert not (tmp_path / "x").exists()
