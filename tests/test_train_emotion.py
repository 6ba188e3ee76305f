"""train/train_emotion_cnn.py end to end on tiny synthetic FER data: outputs, resume, Hub, Optuna."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from accelerate.utils.other import load as accelerate_load
from huggingface_hub import ModelCard

from emoreply.reader import EmotionReader
from emoreply.training.common import TrainerState, resolve_checkpoint, save_checkpoint, sorted_checkpoints
from emoreply.training.metrics import classification_report, plot_confusion_matrix

from .conftest import load_script

train_script = load_script("train/train_emotion_cnn.py")


def run(fer_folder, output_dir, *extra: str) -> None:
    train_script.main(
        [
            "--dataset",
            str(fer_folder),
            "--output_dir",
            str(output_dir),
            "--batch_size",
            "16",
            "--channels",
            "4",
            "8",
            "8",
            "--hidden_size",
            "16",
            "--no_progress",
            "--seed",
            "1",
            *extra,
        ]
    )


def test_classification_report_counts_every_label_and_plots(tmp_path):
    report = classification_report([0, 1, 2, 2], [0, 2, 2, 1], ["a", "b", "c", "d"])
    assert report["accuracy"] == 0.5
    assert report["macro_f1"] == pytest.approx((1 + 0 + 0.5 + 0) / 4)  # "d", never seen, scores 0
    assert report["per_class"]["c"] == {"recall": 0.5, "precision": 0.5, "f1": 0.5, "support": 2}
    assert report["per_class"]["d"] == {"recall": 0.0, "precision": 0.0, "f1": 0.0, "support": 0}
    assert report["confusion_matrix"] == [[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    json.dumps(report)  # plain Python numbers: eval_results.json
    plot_confusion_matrix(report["confusion_matrix"], ["a", "b", "c", "d"], tmp_path / "cm.png", "title")
    assert (tmp_path / "cm.png").read_bytes().startswith(b"\x89PNG")


def test_training_writes_a_loadable_model_report_plots_and_card(fer_folder, tmp_path):
    out = tmp_path / "run"
    run(fer_folder, out, "--num_epochs", "2", "--preset", "train/configs/emotion_cnn.json")
    for name in (
        "model.safetensors",
        "config.json",
        "preprocessor_config.json",
        "README.md",
        "eval_results.json",
        "confusion_matrix.png",
        "training_curves.png",
        "training_args.json",
        "modeling_emotion_cnn.py",
    ):
        assert (out / name).exists(), name
    args = json.loads((out / "training_args.json").read_text())
    assert args["num_epochs"] == 2 and args["class_weighting"] == "sqrt_inverse"  # flag beats preset
    results = json.loads((out / "eval_results.json").read_text())
    assert results["num_test_images"] == 35
    assert results["default_view"] == "tta_flip"
    for view in ("tta_flip", "no_tta", "tta_ten_view"):
        assert 0 <= results[view]["accuracy"] <= 1 and len(results[view]["per_class"]) == 7
        assert sum(map(sum, results[view]["confusion_matrix"])) == 35
    accuracy, plain, macro_f1 = ModelCard.load(out / "README.md").data.eval_results  # the model-index
    assert accuracy.metric_value == round(results["tta_flip"]["accuracy"], 4) and "mirror" in accuracy.metric_name
    assert plain.metric_value == round(results["no_tta"]["accuracy"], 4)
    assert macro_f1.metric_type == "f1" and macro_f1.metric_value == round(results["tta_flip"]["macro_f1"], 4)
    config = json.loads((out / "config.json").read_text())
    assert len(config["class_weights"]) == 7
    assert EmotionReader.from_pretrained(out).model.config.channels == [4, 8, 8]


def test_evaluation_script_picks_a_view_on_validation_and_rewrites_the_card(fer_folder, tmp_path):
    evaluate = load_script("train/evaluate_emotion_cnn.py")
    out = tmp_path / "run"
    run(fer_folder, out, "--num_epochs", "1")
    val = evaluate.main(["--model", str(out), "--dataset", str(fer_folder), "--split", "validation"])
    assert (out / "validation" / "eval_results.json").exists() and set(val) >= {"no_tta", "tta_ten_view"}
    test = evaluate.main(
        ["--model", str(out), "--dataset", str(fer_folder), "--default_view", "tta_ten_view", "--update_card"]
    )
    assert test["default_view"] == "tta_ten_view" and test["num_test_images"] == 35
    assert EmotionReader.from_pretrained(out).model.config.test_time_shift == 2
    card = ModelCard.load(out / "README.md")
    assert "ten-view" in card.text
    assert card.data.eval_results[0].metric_value == round(test["tta_ten_view"]["accuracy"], 4)


def test_warm_start_begins_from_the_saved_weights(fer_folder, tmp_path):
    from emoreply.emotion_cnn import EmotionCNNForImageClassification

    run(fer_folder, tmp_path / "first", "--num_epochs", "1")
    # lr 0: AdamW changes nothing, so the exported convs must be exactly the warm-start weights
    run(
        fer_folder,
        tmp_path / "warm",
        "--num_epochs",
        "1",
        "--init_from",
        str(tmp_path / "first"),
        "--learning_rate",
        "0",
    )
    first, warm = (
        EmotionCNNForImageClassification.from_pretrained(tmp_path / d).state_dict() for d in ("first", "warm")
    )
    assert all(torch.equal(first[k], warm[k]) for k in first if k.endswith(".weight"))
    assert f"Warm start: the weights of `{tmp_path / 'first'}`" in (tmp_path / "warm" / "README.md").read_text()
    # A run's notes (e.g. what changed when it was resumed) reach the card when it is rewritten.
    (tmp_path / "warm" / "training_notes.md").write_text("Second cosine cycle of the bundled model.")
    evaluate = load_script("train/evaluate_emotion_cnn.py")
    evaluate.main(["--model", str(tmp_path / "warm"), "--dataset", str(fer_folder), "--update_card"])
    assert "Second cosine cycle of the bundled model." in (tmp_path / "warm" / "README.md").read_text()


def test_interrupted_run_resumes_from_its_last_checkpoint(fer_folder, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    swa = ("--swa_start_epoch", "2")  # the weight average is part of the state that must resume
    run(fer_folder, straight, "--num_epochs", "3", *swa)
    run(fer_folder, resumed, "--num_epochs", "3", "--keep_checkpoints", "3", *swa)
    # Simulate a kill after epoch 1: drop later checkpoints, leave a half-written one behind.
    for ckpt in sorted_checkpoints(resumed)[1:]:
        shutil.rmtree(ckpt)
    (resumed / "checkpoints" / "epoch_9").mkdir()  # no trainer_state.json: incomplete, ignored
    first = sorted_checkpoints(resumed)
    assert [c.name for c in first] == ["epoch_1"]
    run(fer_folder, resumed, "--num_epochs", "3", "--resume_from_checkpoint", "latest", *swa)
    state = json.loads((sorted_checkpoints(resumed)[-1] / "trainer_state.json").read_text())
    assert [h["epoch"] for h in state["history"]] == [1, 2, 3]
    straight_state = json.loads((sorted_checkpoints(straight)[-1] / "trainer_state.json").read_text())
    # Same seed, same data order and augmentations: the resumed run retraces the straight one.
    for a, b in zip(state["history"], straight_state["history"], strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["val_accuracy"] == pytest.approx(b["val_accuracy"], abs=1e-6)
    averaged = [json.loads((d / "training_history.json").read_text())["averaged"] for d in (resumed, straight)]
    assert averaged[0] == pytest.approx(averaged[1])
    # Nothing a resume reads needs unpickling code: accelerate's own files load weights-only too.
    assert not list(resumed.glob("checkpoints/*/custom_checkpoint_*.pkl"))
    for file in [*resumed.glob("checkpoints/*/*.bin"), *resumed.glob("checkpoints/*/*.pkl")]:
        accelerate_load(file)  # weights_only=True, numpy's RNG state types allowed


def test_weight_averaging_exports_the_mean_of_the_epochs_when_it_wins(fer_folder, tmp_path):
    from safetensors.torch import load_file

    out = tmp_path / "run"
    run(fer_folder, out, "--num_epochs", "3", "--swa_start_epoch", "2", "--keep_checkpoints", "3")
    averaged = json.loads((out / "training_history.json").read_text())["averaged"]
    assert averaged["first_epoch"] == 2 and averaged["last_epoch"] == 3 and 0 <= averaged["val_accuracy"] <= 1
    epochs = [load_file(out / "checkpoints" / f"epoch_{n}" / "model.safetensors") for n in (2, 3)]
    # The running mean lives in the checkpoint as safetensors (no pickle): n = 2, the mean of 2 and 3.
    swa = load_file(out / "checkpoints" / "epoch_3" / "swa.safetensors")
    assert swa["n_averaged"].item() == 2
    for key, first in epochs[0].items():
        if key.endswith(".weight") and first.is_floating_point():
            torch.testing.assert_close(swa[f"module.{key}"], (first + epochs[1][key]) / 2)
    exported = load_file(out / "model.safetensors")
    best_epoch = json.loads((out / "training_history.json").read_text())["best_epoch"]
    # Exported: the average (its BatchNorm statistics recomputed) if it won on validation, else the best epoch.
    expected = (
        {k[len("module.") :]: v for k, v in swa.items() if k.startswith("module.")}
        if averaged["kept"]
        else (load_file(out / "checkpoints" / f"epoch_{best_epoch}" / "model.safetensors"))
    )
    for key in exported:
        if key.endswith(".weight"):
            torch.testing.assert_close(exported[key], expected[key])
    assert "Weight averaging (SWA): the mean of the weights after epochs 2-3" in (out / "README.md").read_text()


def test_a_new_run_in_a_folder_holding_another_run_stops_or_starts_over(fer_folder, tmp_path):
    out = tmp_path / "run"
    run(fer_folder, out, "--num_epochs", "3")  # the older run: epoch_2 and epoch_3 kept
    old_id = json.loads((sorted_checkpoints(out)[-1] / "trainer_state.json").read_text())["run_id"]
    with pytest.raises(SystemExit) as refused:
        run(fer_folder, out, "--num_epochs", "1")
    message = str(refused.value.code)
    assert "\n" not in message and str(out) in message
    assert "--resume_from_checkpoint latest" in message and "--overwrite_output_dir" in message
    assert [c.name for c in sorted_checkpoints(out)] == ["epoch_2", "epoch_3"]  # untouched
    run(fer_folder, out, "--num_epochs", "1", "--overwrite_output_dir")
    (only,) = sorted_checkpoints(out)
    state = json.loads((only / "trainer_state.json").read_text())
    assert only.name == "epoch_1" and state["run_id"] not in ("", old_id)
    history = json.loads((out / "training_history.json").read_text())
    assert history["best_epoch"] == 1 and len(history["history"]) == 1  # the card reports this run


def test_pruning_keeps_this_runs_checkpoints_whatever_another_run_left(tmp_path):
    class OneProcess:  # save_checkpoint's view of an Accelerator: only the bookkeeping is under test
        is_main_process = True

        def save_state(self, folder: str) -> None:
            Path(folder).mkdir(parents=True)

        def wait_for_everyone(self) -> None:
            pass

    for epoch in (5, 6):
        save_checkpoint(OneProcess(), TrainerState(run_id="old", epoch=epoch), tmp_path)
    for epoch in (1, 2, 3):
        save_checkpoint(OneProcess(), TrainerState(run_id="new", epoch=epoch), tmp_path, keep=2)
    assert [c.name for c in sorted_checkpoints(tmp_path)] == ["epoch_2", "epoch_3", "epoch_5", "epoch_6"]
    with pytest.raises(SystemExit, match="several runs"):  # "latest" would be a guess
        resolve_checkpoint("latest", tmp_path)


def test_corrupt_checkpoint_is_named_in_the_error(fer_folder, tmp_path):
    out = tmp_path / "run"
    run(fer_folder, out, "--num_epochs", "1")
    ckpt = sorted_checkpoints(out)[-1]
    (ckpt / "model.safetensors").write_bytes(b"truncated")
    with pytest.raises(RuntimeError, match=f"Checkpoint {ckpt} is corrupt"):
        run(fer_folder, out, "--num_epochs", "2", "--resume_from_checkpoint", "latest")


def test_push_to_hub_uploads_the_folder_without_checkpoints(fer_folder, tmp_path, monkeypatch):
    import huggingface_hub

    calls = {}

    def fake_create_repo(self, repo_id, **kwargs):
        calls["repo"] = repo_id
        return f"https://huggingface.co/{repo_id}"

    def fake_upload_folder(self, folder_path, repo_id, ignore_patterns=(), **kwargs):
        from pathlib import Path

        calls["files"] = sorted(p.name for p in Path(folder_path).iterdir())
        calls["ignore"] = ignore_patterns

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", fake_create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", fake_upload_folder)
    # The check before training (tests/test_hub_and_data.py covers its failures): a valid write token.
    monkeypatch.setattr(huggingface_hub.HfApi, "whoami", lambda self, **kw: {"name": "me", "orgs": []})
    monkeypatch.setattr(huggingface_hub.HfApi, "auth_check", lambda self, repo_id, **kw: None)
    run(fer_folder, tmp_path / "run", "--num_epochs", "1", "--push_to_hub", "--hub_model_id", "me/emotion-test")
    assert calls["repo"] == "me/emotion-test"
    assert {"README.md", "model.safetensors", "config.json", "preprocessor_config.json"} <= set(calls["files"])
    assert "checkpoints/*" in calls["ignore"]


def test_optuna_search_then_final_training(fer_folder, tmp_path):
    pytest.importorskip("optuna")
    out = tmp_path / "run"
    run(fer_folder, out, "--num_epochs", "1", "--optuna_trials", "2", "--optuna_epochs", "1")
    assert len(list((out / "optuna").iterdir())) == 2
    args = json.loads((out / "training_args.json").read_text())
    assert args["batch_size"] in (32, 64, 128)  # the searched value was used for the final run
    assert (out / "eval_results.json").exists()
