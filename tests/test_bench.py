"""The benchmark code paths run (on tiny models, one repeat): rows, ratios and the markdown table.

bench/ is a package: its scripts run as ``python -m bench.<name>`` from the repository root.
"""

from __future__ import annotations

import importlib

import pytest
import torch

import app
from bench import (
    bench_decode_step,
    bench_handler,
    bench_int8_fidelity,
    bench_linear_rows,
    bench_reply,
    common,
    run_all,
)
from emoreply.reader import EmotionReader
from emoreply.reply import ReplyDrafter
from emoreply.reply.cpu_layout import FewRowsLinear

from .conftest import ROOT


@pytest.fixture(scope="module")
def tiny_variants(tiny_model_dir) -> dict[str, ReplyDrafter]:
    return bench_reply.variants(str(tiny_model_dir))


def test_variants_are_the_app_loading_path_in_each_precision_and_the_plain_layout(tiny_variants):
    assert list(tiny_variants) == ["fp32", "bf16", "int8", bench_reply.PLAIN]
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

    head = {k: d.model.lm_head for k, d in tiny_variants.items()}
    assert type(head["fp32"]) is FewRowsLinear and type(head["bf16"]) is torch.nn.Linear
    assert isinstance(head["int8"], Int8Linear) and type(head[bench_reply.PLAIN]) is torch.nn.Linear
    assert {p.dtype for p in tiny_variants["bf16"].model.parameters()} == {torch.bfloat16}


@pytest.mark.parametrize("fixed_length", [True, False])
def test_reply_rows_cover_every_variant_the_sweep_and_training(tiny_variants, fixed_length):
    rows = bench_reply.rows_for("tiny", tiny_variants, repeat=1, fixed_length=fixed_length)
    plain = tiny_variants[bench_reply.PLAIN].model
    rows.append(bench_reply.training_row("tiny", plain, steps=1))
    assert [r.get("baseline", False) for r in rows] == [True] + [False] * 5
    assert all(r["median_ms"] > 0 and r["p95_ms"] >= r["median_ms"] for r in rows)
    assert all(r["ratio"] == r["median_ms"] / rows[0]["median_ms"] for r in rows[1:5])
    assert [r["name"].split(": ")[1] for r in rows[1:4]] == [
        "one reply, bf16",
        "one reply, int8",
        f"one reply, {bench_reply.PLAIN}",
    ]
    assert "decoding steps [" in rows[4]["note"] and rows[5]["note"].endswith("pairs/s") and not plain.training


def test_reply_rows_on_one_thread_restore_the_thread_count(tiny_variants):
    threads = torch.get_num_threads()
    rows = bench_reply.rows_for("tiny", tiny_variants, repeat=1, fixed_length=True, one_thread=True)
    names = [r["name"] for r in rows]
    assert "tiny: one reply, fp32, 1 thread" in names and "tiny: one reply, bf16, 1 thread" in names
    assert torch.get_num_threads() == threads


def test_sweep_ratios_row_spans_the_messages(tiny_variants):
    row = bench_reply.sweep_ratios_row("tiny", tiny_variants["fp32"], ["Hi!", "How is your day going?"], repeat=1)
    assert row["ratio"] > 0 and "2 messages" in row["name"] and "÷ the mean of its 7 replies alone" in row["note"]


def test_handler_rows_time_fp32_int8_and_bf16(tiny_emotion_model_dir, tiny_model_dir):
    reader = EmotionReader.from_pretrained(tiny_emotion_model_dir)
    loaded = []

    def load(precision: str) -> app.Models:
        loaded.append(precision)
        drafter = ReplyDrafter.from_pretrained(str(tiny_model_dir), precision=precision)
        return app.Models(reader, drafter, drafter.base_drafter(str(tiny_model_dir)))

    rows = bench_handler.rows_for("tiny", load, repeat=1)
    assert loaded == ["fp32", "int8", "bf16"]
    assert len(rows) == 4 and rows[0]["baseline"] and "bf16" in rows[3]["name"]
    assert "to the fine-tuned draft (shown first)" in rows[1]["name"]
    assert all(r["ratio"] == rows[0]["median_ms"] / r["median_ms"] for r in rows[1:])


def test_an_adapter_also_gets_a_merged_variant(tiny_adapter_dir):
    drafters = bench_reply.variants(str(tiny_adapter_dir))
    assert list(drafters) == ["fp32", "bf16", "int8", bench_reply.PLAIN, bench_reply.MERGED]
    merged = drafters[bench_reply.MERGED]
    assert not hasattr(merged.model, "peft_config")
    prompts = [merged.prompt("Hi there", e)[0] for e in ("happy", "sad")]
    assert merged.generate(prompts) == drafters["fp32"].generate(prompts)  # merging changes speed, not replies


def test_linear_rows_pair_nn_linear_with_few_rows_linear_per_stack_and_rows():
    rows = bench_linear_rows.rows_for({"two layers": [(16, 64), (64, 16)], "head": [(16, 128)]}, [1, 3], repeat=1)
    assert [r.get("baseline", False) for r in rows] == [True, False] * 4
    assert rows[3]["name"] == "FewRowsLinear, two layers (0 MiB), 3 rows"
    assert rows[3]["ratio"] == rows[2]["median_ms"] / rows[3]["median_ms"] and "GiB/s" in rows[3]["note"]
    assert rows[-1]["name"].startswith("FewRowsLinear, head")


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
    monkeypatch.setattr(run_all, "run_bench", lambda name, argv: f"### {name} {argv}")
    out = tmp_path / "results.md"
    text = run_all.main(["--quick", "--output", str(out)])
    assert out.read_text() == text and text.startswith("`python -m bench.run_all --quick`")
    assert "### bench_emotion ['--quick']" in text and "### bench_linear_rows ['--quick']" in text
    assert "### bench_app_load ['--clients', '4', '--requests', '2']" in text


@pytest.mark.parametrize("path", sorted((ROOT / "bench").glob("*.py")), ids=lambda path: path.stem)
def test_every_bench_module_imports_as_part_of_the_package(path):
    module = importlib.import_module(f"bench.{path.stem}")
    assert module.__doc__
    if path.stem not in ("__init__", "common"):  # the rest run as python -m bench.<name>
        assert callable(module.main) and "python -m bench." + path.stem in module.__doc__


def test_decode_step_rows_time_prefill_and_one_cached_step_per_batch(tiny_chat_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_chat_dir).eval()
    rows = bench_decode_step.step_rows(model, (1, 2), prompt_tokens=5, repeat=1)
    assert [r["name"] for r in rows] == [
        "prefill, 5 tokens, batch 1",
        "one decoding step, batch 1",
        "prefill, 5 tokens, batch 2",
        "one decoding step, batch 2",
    ]
    assert all(r["median_ms"] > 0 for r in rows) and "GB/s effective" in rows[1]["note"]
    assert "GB/s" in bench_decode_step.bandwidth_row(1, repeat=1)["note"]
    assert "GFLOPS" in bench_decode_step.matmul_row(64, repeat=1)["note"]


def test_int8_fidelity_is_zero_for_the_same_distribution_and_positive_for_another():
    a = torch.tensor([[0.0, 1.0, 2.0], [2.0, 0.0, 0.0]]).log_softmax(-1)
    b = torch.tensor([[0.0, 2.0, 1.0], [2.0, 0.0, 0.0]]).log_softmax(-1)
    assert bench_int8_fidelity.fidelity(a, a) == {"kl": 0.0, "top1": 1.0}
    f = bench_int8_fidelity.fidelity(a, b)
    assert f["kl"] > 0 and f["top1"] == 0.5


def test_int8_fidelity_rows_quantise_only_the_named_layers(tiny_adapter_dir):
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    out = bench_int8_fidelity.main(["--model", str(tiny_adapter_dir), "--quick"])
    assert "| fp32, adapter merged (reference) |" in out and "| int8 down_proj only |" in out
    assert out.count("nats, same first token") == 4  # per tensor, per channel, down_proj only, all but down_proj
    assert out.count(", same draft ") == 3  # whole drafts for the variants that quantise (nearly) every layer
    merged = ReplyDrafter.from_pretrained(str(tiny_adapter_dir)).model.merge_and_unload()
    only_down = bench_int8_fidelity.quantized(merged, lambda name: name.endswith("down_proj"))
    kinds = {name.rsplit(".", 1)[-1]: type(m) for name, m in only_down.named_modules() if "layers.0." in name}
    assert kinds["down_proj"] is DynamicLinear and kinds["up_proj"] is FewRowsLinear  # as the drafter has it
