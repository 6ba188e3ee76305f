"""The benchmark code paths run (on tiny models, one repeat): rows, ratios and the markdown table."""

from __future__ import annotations

import app
from emoreply.reader import EmotionReader
from emoreply.reply import ReplyDrafter

from .conftest import load_script

common = load_script("bench/common.py")
bench_reply = load_script("bench/bench_reply.py")
bench_handler = load_script("bench/bench_handler.py")


def test_reply_rows_cover_fp32_int8_sweep_and_training(tiny_model_dir):
    drafter = ReplyDrafter.from_pretrained(tiny_model_dir, device="cpu", max_new_tokens=4)
    rows = bench_reply.rows_for("tiny", drafter, repeat=1, fixed_length=True)
    rows.append(bench_reply.training_row("tiny", drafter.model, steps=1))
    assert [r.get("baseline", False) for r in rows] == [True, False, False, False]
    assert all(r["median_ms"] > 0 and r["p95_ms"] >= r["median_ms"] for r in rows)
    assert rows[1]["ratio"] == rows[1]["median_ms"] / rows[0]["median_ms"]
    assert rows[3]["note"].endswith("pairs/s") and not drafter.model.training


def test_handler_rows_compare_sequential_concurrent_and_int8(tiny_emotion_model_dir, tiny_model_dir):
    models = app.Models(
        EmotionReader.from_pretrained(tiny_emotion_model_dir),
        ReplyDrafter.from_pretrained(tiny_model_dir, base_model=str(tiny_model_dir), max_new_tokens=4),
    )
    rows = bench_handler.rows_for("tiny", models, repeat=1)
    assert len(rows) == 3 and rows[0]["baseline"]
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
    mb = bench_handler.peak_rss(str(tiny_model_dir), str(tiny_model_dir), int8=True)
    assert 50 < mb < 4000


def test_run_all_joins_every_benchmark_into_one_file(tmp_path, monkeypatch):
    run_all = load_script("bench/run_all.py")
    monkeypatch.setattr(run_all, "run_bench", lambda name, argv: f"### {name} {argv}")
    out = tmp_path / "results.md"
    text = run_all.main(["--quick", "--output", str(out)])
    assert out.read_text() == text and text.startswith("`python bench/run_all.py --quick`")
    assert "### bench_emotion ['--quick']" in text
    assert "### bench_app_load ['--clients', '4', '--requests', '2']" in text
