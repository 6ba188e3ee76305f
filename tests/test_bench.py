"""The benchmark code paths run (on tiny models, one repeat): rows, ratios and the markdown table."""

from __future__ import annotations

import pytest
import torch

import app
from emoreply.reader import EmotionReader
from emoreply.reply import ReplyDrafter

from .conftest import load_script

common = load_script("bench/common.py")
bench_reply = load_script("bench/bench_reply.py")
bench_handler = load_script("bench/bench_handler.py")


@pytest.mark.parametrize("fixed_length", [True, False])
def test_reply_rows_cover_fp32_int8_bf16_sweep_and_training(tiny_model_dir, fixed_length):
    drafter = ReplyDrafter.from_pretrained(tiny_model_dir, device="cpu", max_new_tokens=4)
    rows = bench_reply.rows_for("tiny", drafter, repeat=1, fixed_length=fixed_length)
    rows.append(bench_reply.training_row("tiny", drafter.model, steps=1))
    assert [r.get("baseline", False) for r in rows] == [True, False, False, False, False]
    assert all(r["median_ms"] > 0 and r["p95_ms"] >= r["median_ms"] for r in rows)
    assert all(r["ratio"] == r["median_ms"] / rows[0]["median_ms"] for r in rows[1:4])
    assert "int8" in rows[1]["name"] and "bf16" in rows[2]["name"] and "decoding steps [" in rows[3]["note"]
    assert rows[4]["note"].endswith("pairs/s") and not drafter.model.training
    assert {p.dtype for p in drafter.model.parameters()} == {torch.float32}  # bf16 row worked on a copy


def test_reply_rows_on_one_thread_restore_the_thread_count(tiny_model_dir):
    drafter = ReplyDrafter.from_pretrained(tiny_model_dir, device="cpu", max_new_tokens=3)
    threads = torch.get_num_threads()
    rows = bench_reply.rows_for("tiny", drafter, repeat=1, fixed_length=True, one_thread=True)
    names = [r["name"] for r in rows]
    assert "tiny: one reply, fp32, 1 thread" in names and "tiny: one reply, bf16, 1 thread" in names
    assert torch.get_num_threads() == threads


def test_sweep_ratios_row_spans_the_messages(tiny_model_dir):
    drafter = ReplyDrafter.from_pretrained(tiny_model_dir, device="cpu", max_new_tokens=4)
    row = bench_reply.sweep_ratios_row("tiny", drafter, ["Hi!", "How is your day going?"], repeat=1)
    assert row["ratio"] > 0 and "2 messages" in row["name"] and "÷ the mean of its 7 replies alone" in row["note"]


def test_handler_rows_compare_sequential_concurrent_int8_and_bf16(tiny_emotion_model_dir, tiny_model_dir):
    models = app.Models(
        EmotionReader.from_pretrained(tiny_emotion_model_dir),
        ReplyDrafter.from_pretrained(tiny_model_dir, base_model=str(tiny_model_dir), max_new_tokens=4),
    )
    rows = bench_handler.rows_for("tiny", models, repeat=1)
    assert len(rows) == 4 and rows[0]["baseline"] and "bf16" in rows[3]["name"]
    assert all(r["ratio"] == rows[0]["median_ms"] / r["median_ms"] for r in rows[1:])


def test_table_shows_ratios_and_rows_without_times():
    out = common.table(
        [
            {"name": "a", "median_ms": 2.0, "p95_ms": 3.0, "baseline": True},
            {"name": "b", "median_ms": 1.0, "p95_ms": 1.5, "ratio": 2.0, "note": "fast"},
            {"name": "rss", "note": "900 MiB"},
        ],
        "T",
        ratio="speed-up",
    )
    lines = out.splitlines()
    assert "| benchmark | median | p95 | speed-up | note |" in lines
    assert "| a | 2.00 ms | 3.00 ms | baseline |  |" in lines and "| b | 1.00 ms | 1.50 ms | 2.00x | fast |" in lines
    assert "| rss | — | — |  | 900 MiB |" in lines


def test_peak_rss_is_this_process_high_water_mark():
    assert 10 < common.peak_rss_mb() < 100_000


def test_peak_rss_is_measured_in_a_fresh_app_process(tiny_model_dir):
    # The subprocess loads the bundled emotion CNN and two copies of the tiny T5, builds the UI, runs 5 round trips.
    mb = bench_handler.peak_rss(str(tiny_model_dir), str(tiny_model_dir), "int8")
    assert 50 < mb < 4000


def test_run_all_joins_every_benchmark_into_one_file(tmp_path, monkeypatch):
    run_all = load_script("bench/run_all.py")
    monkeypatch.setattr(run_all, "run_bench", lambda name, argv: f"### {name} {argv}")
    out = tmp_path / "results.md"
    text = run_all.main(["--quick", "--output", str(out)])
    assert out.read_text() == text and text.startswith("`python bench/run_all.py --quick`")
    assert "### bench_emotion ['--quick']" in text
    assert "### bench_app_load ['--clients', '4', '--requests', '2']" in text
