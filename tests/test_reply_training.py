"""train_reply.py, train_judge.py and evaluate_replies.py end to end on tiny synthetic DailyDialog."""

from __future__ import annotations

import argparse
import json
import shutil

import pytest
import torch

from emoreply.emotion_cnn import EMOTIONS
from emoreply.reply import ReplyDrafter
from emoreply.training.cards import COLUMNS, write_reply_card
from emoreply.training.common import sorted_checkpoints
from emoreply.training.judge import EmotionJudge

from .conftest import TINY_T5, load_script
from .test_reply_drafter import count_generate

train_script = load_script("train/train_reply.py")
judge_script = load_script("train/train_judge.py")
eval_script = load_script("train/evaluate_replies.py")


def run(dailydialog_dir, output_dir, *extra: str):
    return train_script.main(
        [
            "--dataset",
            str(dailydialog_dir),
            "--output_dir",
            str(output_dir),
            "--batch_size",
            "8",
            "--max_steps_per_epoch",
            "3",
            "--no_progress",
            "--seed",
            "1",
            *extra,
        ]
    )


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "tiny_t5.json"
    path.write_text(json.dumps(TINY_T5))
    return path


@pytest.fixture(scope="module")
def scratch_run(dailydialog_dir, tiny_config, tmp_path_factory):
    out = tmp_path_factory.mktemp("reply-scratch")
    state = run(
        dailydialog_dir,
        out,
        "--config_name",
        str(tiny_config),
        "--train_tokenizer",
        "--vocab_size",
        "150",
        "--num_epochs",
        "1",
    )
    return out, state


def test_scratch_training_writes_a_loadable_model(scratch_run):
    out, state = scratch_run
    for name in (
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "README.md",
        "training_args.json",
        "training_history.json",
        "training_curves.png",
        "test_results.json",
    ):
        assert (out / name).exists(), name
    assert state.epoch == 1 and {"val_loss", "val_perplexity", "train_loss"} <= set(state.history[0])
    config = json.loads((out / "config.json").read_text())
    assert config["d_model"] == TINY_T5["d_model"] and config["vocab_size"] <= 150
    assert "Prompt format" in (out / "README.md").read_text()
    (out / "training_notes.md").write_text("Resumed at epoch 3 with `--balance_max_repeat 20`.")
    assert "Resumed at epoch 3" in write_reply_card(out).read_text()
    (out / "training_notes.md").unlink()
    assert isinstance(ReplyDrafter.from_pretrained(out, device="cpu", max_new_tokens=3).draft("Hi", "happy").text, str)


def test_fine_tuning_a_pretrained_folder_and_push_to_hub(dailydialog_dir, tiny_model_dir, tmp_path, monkeypatch):
    import huggingface_hub

    uploaded: dict = {}

    def create_repo(self, repo_id, **kwargs):
        uploaded["repo_id"] = repo_id
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, folder_path, repo_id, ignore_patterns=(), **kwargs):
        # Fake only the network: record what would be uploaded at the time of the call.
        uploaded["files"] = {p.name for p in __import__("pathlib").Path(folder_path).iterdir()}
        uploaded["ignore"] = list(ignore_patterns)

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    # The check before training (tests/test_hub_and_data.py covers its failures): a valid write token.
    monkeypatch.setattr(huggingface_hub.HfApi, "whoami", lambda self, **kw: {"name": "someone", "orgs": []})
    monkeypatch.setattr(huggingface_hub.HfApi, "auth_check", lambda self, repo_id, **kw: None)
    out = tmp_path / "finetuned"
    # A tiny random T5 in a folder stands in for the Hub id google-t5/t5-small.
    run(
        dailydialog_dir,
        out,
        "--model_name_or_path",
        str(tiny_model_dir),
        "--num_epochs",
        "1",
        "--push_to_hub",
        "--hub_model_id",
        "someone/reply-test",
    )
    assert uploaded["repo_id"] == "someone/reply-test"
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md"} <= uploaded["files"]
    assert "checkpoints/*" in uploaded["ignore"]
    card = (out / "README.md").read_text()
    assert "someone/reply-test" in card and f"base_model: {tiny_model_dir}" in card
    # A second cycle from that run's folder is a warm restart: the card names the previous cycle, not a base model.
    again = tmp_path / "second-cycle"
    run(dailydialog_dir, again, "--model_name_or_path", str(out), "--num_epochs", "1")
    card = (again / "README.md").read_text()
    assert "base_model:" not in card and f"the weights and tokenizer in `{out}` (the previous cycle)" in card


def test_resume_continues_from_the_last_epoch(dailydialog_dir, tiny_config, tmp_path):
    out = tmp_path / "resume"
    common = ("--config_name", str(tiny_config), "--train_tokenizer", "--vocab_size", "150")
    run(dailydialog_dir, out, *common, "--num_epochs", "1")
    tokenizer_before = (out / "tokenizer.json").read_text()
    resume = ("--num_epochs", "2", "--resume_from_checkpoint", "latest", "--group_by_length")
    state = run(dailydialog_dir, out, *common, *resume)  # the sampler may change across a resume
    assert [h["epoch"] for h in state.history] == [1, 2]  # epoch 1 came from the checkpoint
    assert [p.name for p in sorted_checkpoints(out)] == ["epoch_1", "epoch_2"]
    assert (out / "tokenizer.json").read_text() == tokenizer_before  # reused, not retrained


def test_a_new_run_in_a_folder_holding_another_run_stops_at_once(dailydialog_dir, scratch_run):
    out, _ = scratch_run
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    with pytest.raises(SystemExit, match="--resume_from_checkpoint latest .*--overwrite_output_dir"):
        run(dailydialog_dir, out, "--model_name_or_path", str(out), "--num_epochs", "1")
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before  # nothing written, nothing deleted


def test_scratch_needs_a_tokenizer(tiny_config, tmp_path):
    with pytest.raises(SystemExit):
        train_script.parse_args(["--output_dir", str(tmp_path), "--config_name", str(tiny_config)])


def test_presets_parse():
    for preset in ("train/configs/reply_t5_small_scratch.json", "train/configs/reply_t5_small_finetune.json"):
        args = train_script.parse_args(["--preset", preset, "--output_dir", "x"])
        assert args.batch_size >= 16 and args.patience == 3
    scratch = train_script.parse_args(["--preset", "train/configs/reply_t5_small_scratch.json", "--output_dir", "x"])
    assert scratch.train_tokenizer and scratch.vocab_size == 8000 and scratch.balance_emotions
    assert scratch.emotion_guidance == 0  # T5: plain greedy decoding, as in the paper
    lora = train_script.parse_args(["--preset", "train/configs/reply_smollm2_lora.json", "--output_dir", "x"])
    assert lora.lora_r == 16 and (lora.emotion_guidance, lora.context_contrast, lora.plausibility) == (2.5, 0.5, 0.1)
    from transformers import T5Config, T5ForConditionalGeneration

    with torch.device("meta"):  # shapes only: no memory, no init time
        model = T5ForConditionalGeneration(T5Config(vocab_size=scratch.vocab_size, **scratch.config_overrides))
    assert sum(p.numel() for p in model.parameters()) * 4 <= 40e6  # the bundled responder's fp32 budget


def test_judge_training_and_reply_evaluation(dailydialog_dir, scratch_run, tiny_adapter_dir, tiny_chat_dir, tmp_path):
    model_dir, _ = scratch_run
    judge_dir = tmp_path / "judge"
    judge_script.main(
        ["--dataset", str(dailydialog_dir), "--output_dir", str(judge_dir), "--C", "1", "4", "--min_df", "1"]
    )
    judge = EmotionJudge.load(judge_dir)
    assert {"accuracy", "macro_f1", "C"} <= set(judge.metrics)
    assert set(judge.predict(["I ’ m so happy for you !", "Where is the station ?"])) <= set(judge.classes)

    out = tmp_path / "eval"
    adapter = tmp_path / "adapter"  # evaluated with --update_card: a copy, not the shared fixture
    shutil.copytree(tiny_adapter_dir, adapter)
    (adapter / "generation_config.json").write_text('{"_from_model_config": false, "emotion_guidance": 1.0}')
    results = eval_script.main(
        [
            "--model",
            str(adapter),
            "--compare",
            str(model_dir),
            "--scorer",
            str(tiny_chat_dir),
            "--judge",
            str(judge_dir),
            "--dataset",
            str(dailydialog_dir),
            "--max_eval_samples",
            "12",
            "--max_sweep_samples",
            "2",
            "--relevance_contexts",
            "8",
            "--relevance_set_size",
            "2",
            "--batch_size",
            "8",
            "--max_new_tokens",
            "4",
            "--output_dir",
            str(out),
            "--no_progress",
            "--update_card",
        ]
    )
    saved = json.loads((out / "eval_results.json").read_text())
    assert saved["num_pairs"] == 12 and saved["num_sweep_contexts"] == 2 and saved["precision"] == "fp32"
    # Only the first pair of each dialogue is ranked (4 of the first 12 pairs): 2 sets of 2.
    assert saved["relevance_contexts"] == 4 and saved["relevance_set_size"] == 2
    assert saved["emotion_guidance"] == 1.0  # as the folder stores it; without it, the no_guidance row
    assert set(saved["rows"]) == {"fine_tuned", "no_guidance", "no_emotion", "base", str(model_dir), "references"}
    swept = {"fine_tuned", "no_guidance", "base", str(model_dir)}  # the rows whose prompt carries the emotion
    for key, row in saved["rows"].items():
        assert 0 <= row["relevance_top1"] <= 1 and row["relevance_top1_vs_references"] >= 0, key
        if key in swept:  # every column, the sweep's relevance per requested emotion among them
            assert {k for k, _, _ in COLUMNS} <= set(row), key
            assert set(row["sweep_relevance_per_emotion"]) == set(EMOTIONS), key
            assert 0 <= row["sweep_blocked_rate"] <= 1 and row["sweep_relevance_top1_vs_references"] >= 0, key
        if key != "references":
            assert row["perplexity_per_word"] > 1 and 0 <= row["blocked_rate"] <= 1, key
    assert "sweep_relevance_top1" not in saved["rows"]["no_emotion"]
    assert saved["rows"]["references"]["relevance_top1_vs_references"] == 1.0
    assert saved["rows"]["no_emotion"]["controllability"] is None
    assert set(saved["rows"]["no_guidance"]["controllability_per_emotion"]) == set(EMOTIONS)
    assert set(saved["rows"]["fine_tuned"]["controllability_per_emotion"]) == set(EMOTIONS)
    assert saved["rows"]["fine_tuned"]["model"] == str(adapter) and saved["rows"]["base"]["model"].endswith(
        "(adapter off)"
    )
    assert "| fine-tuned |" in (out / "eval_results.md").read_text()
    assert "| human reference replies |" in (out / "eval_results.md").read_text()
    assert results["rows"] == saved["rows"]
    assert "| fine-tuned |" in (adapter / "README.md").read_text()  # --update_card refreshed the card


def test_evaluation_replies_resume_from_their_cache(tiny_adapter_dir, tmp_path, monkeypatch):
    drafter = ReplyDrafter.from_pretrained(tiny_adapter_dir, device="cpu", max_new_tokens=4)
    args = argparse.Namespace(replies_dir=str(tmp_path), batch_size=2, no_progress=True, precision="fp32")
    jobs = [(f"Message number {i}" + "!" * (5 - i), "happy", ["Hello"]) for i in range(5)]  # longest first
    in_one_sitting = eval_script.generate(drafter, jobs, argparse.Namespace(**{**vars(args), "replies_dir": None}), "x")
    first = eval_script.generate(drafter, jobs[:3], args, "row")  # a sitting stopped after three replies
    with (tmp_path / "row.jsonl").open("a") as f:
        f.write('{"job": ["Message num')  # ... in the middle of writing a line
    calls = count_generate(monkeypatch, drafter.model)
    resumed = eval_script.generate(drafter, jobs, args, "row")
    assert resumed[:3] == first and resumed == in_one_sitting
    assert [c["input_ids"].shape[0] for c in calls] == [2]  # only the two missing replies were generated
    assert eval_script.generate(drafter, jobs[::-1], args, "row") == resumed[::-1] and len(calls) == 1  # cached
    more = eval_script.generate(drafter, [*jobs, ("Another message", "sad", [])], args, "row")
    assert more[:5] == resumed and len(calls) == 2 and calls[-1]["input_ids"].shape[0] == 1  # only the new job
    drafter.max_new_tokens = 3  # other settings: nothing is reused
    assert len(eval_script.generate(drafter, jobs, args, "row")) == 5 and len(calls) == 5
    lines = (tmp_path / "row.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["max_new_tokens"] == 3 and len(lines) == 6  # the settings, then five replies
    assert json.loads(lines[1])["job"][0] == jobs[-1][0]  # the shortest prompts were drafted first


def test_evaluation_batches_hold_prompts_of_similar_length(tiny_adapter_dir, monkeypatch):
    drafter = ReplyDrafter.from_pretrained(tiny_adapter_dir, device="cpu", max_new_tokens=2)
    args = argparse.Namespace(replies_dir=None, batch_size=2, no_progress=True, precision="fp32")
    jobs = [("Hi" + " there" * n, "happy", []) for n in (9, 0, 8, 1)]
    calls = count_generate(monkeypatch, drafter.model)
    replies = eval_script.generate(drafter, jobs, args, "row")
    widths = [c["input_ids"].shape[1] for c in calls]
    assert len(replies) == 4 and len(widths) == 2 and widths[0] < widths[1]  # the two short, then the two long


def test_lora_fine_tuning_of_a_chat_model_writes_a_loadable_adapter(dailydialog_dir, tiny_chat_dir, tmp_path):
    out = tmp_path / "lora"
    common = (
        "--model_name_or_path",
        str(tiny_chat_dir),
        "--lora_r",
        "2",
        "--balance_emotions",
        "--max_per_emotion",
        "9",
    )
    state = run(
        dailydialog_dir,
        out,
        *common,
        "--num_epochs",
        "1",
        "--max_eval_per_emotion",
        "2",
        "--emotion_guidance",
        "1.5",
        "--context_contrast",
        "0.5",
        "--plausibility",
        "0.1",
    )
    for name in ("adapter_model.safetensors", "adapter_config.json", "generation_config.json", "README.md"):
        assert (out / name).exists(), name
    assert not (out / "model.safetensors").exists()  # only the adapter: the base is not copied
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_chat_dir) and config["r"] == 2
    generation = json.loads((out / "generation_config.json").read_text())
    assert generation["no_repeat_ngram_size"] == 3 and generation["max_new_tokens"] == 20
    assert [generation[key] for key in ("emotion_guidance", "context_contrast", "plausibility")] == [1.5, 0.5, 0.1]
    assert "library_name: peft" in (out / "README.md").read_text()
    state = run(
        dailydialog_dir,
        out,
        *common,
        "--num_epochs",
        "2",
        "--resume_from_checkpoint",
        "latest",
        "--emotion_guidance",
        "1.5",
    )
    assert [h["epoch"] for h in state.history] == [1, 2]
    drafter = ReplyDrafter.from_pretrained(out, device="cpu", max_new_tokens=3)
    assert hasattr(drafter.model, "peft_config") and isinstance(drafter.draft("Hi", "happy").text, str)
    assert drafter.emotion_guidance == 1.5


def test_a_lower_precision_evaluation_cannot_rewrite_the_fp32_card():
    with pytest.raises(SystemExit):
        eval_script.parse_args(["--precision", "bf16", "--update_card"])
    assert eval_script.parse_args(["--precision", "int8"]).precision == "int8"
    with pytest.raises(SystemExit):  # a guidance scale the folder does not store would mislabel its card
        eval_script.parse_args(["--emotion_guidance", "2", "--update_card"])
    with pytest.raises(SystemExit):
        eval_script.parse_args(["--context_contrast", "0.5", "--update_card"])
    assert eval_script.parse_args(["--plausibility", "0.1"]).plausibility == 0.1
    assert eval_script.parse_args(["--skip", "no_guidance", "base"]).skip == ["no_guidance", "base"]
    with pytest.raises(SystemExit):  # the fine-tuned row is what is evaluated: it cannot be skipped
        eval_script.parse_args(["--skip", "fine_tuned"])
