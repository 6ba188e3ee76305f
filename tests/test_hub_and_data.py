"""Hub push checked before training (network faked at HfApi), and --dataset sources a newcomer can find."""

from __future__ import annotations

import json

import huggingface_hub
import pytest

from emoreply.training import data_sources, hub

from .conftest import load_script

emotion_script = load_script("train/train_emotion_cnn.py")
TINY = ["--channels", "4", "8", "8", "--hidden_size", "16", "--no_progress", "--batch_size", "16"]


class FakeResponse:
    def __init__(self, status_code: int):
        self.status_code = status_code
        self.headers: dict = {}
        self.request = None


def http_error(status: int):
    return huggingface_hub.errors.HfHubHTTPError(f"{status} Client Error", response=FakeResponse(status))


@pytest.fixture
def fake_hub(monkeypatch):
    """HfApi with its network calls replaced: records calls; ``hub["fail"]`` makes one of them raise."""
    state: dict = {"calls": [], "repos": set(), "fail": {}}

    def call(name, value=None):
        def method(self, *args, **kwargs):
            state["calls"].append(name)
            if name in state["fail"]:
                raise state["fail"][name]
            if name == "auth_check" and args[0] not in state["repos"]:
                raise http_error(404)
            if name == "create_repo":
                state["repos"].add(args[0])
                return f"https://huggingface.co/{args[0]}"
            if name == "upload_folder":
                state["uploaded"] = sorted(p.name for p in __import__("pathlib").Path(kwargs["folder_path"]).iterdir())
            return value

        return method

    monkeypatch.setattr(huggingface_hub.HfApi, "whoami", call("whoami", {"name": "me", "orgs": []}))
    for name in ("auth_check", "create_repo", "upload_folder"):
        monkeypatch.setattr(huggingface_hub.HfApi, name, call(name))
    return state


def test_check_resolves_the_namespace_and_creates_a_missing_repo(fake_hub):
    assert hub.check_hub_push("emotion", token="t") == "me/emotion"
    assert fake_hub["calls"] == ["whoami", "auth_check", "create_repo", "auth_check"]
    fake_hub["calls"].clear()
    assert hub.check_hub_push("me/emotion", token="t") == "me/emotion"  # exists now: nothing created
    assert fake_hub["calls"] == ["whoami", "auth_check"]


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (("whoami", ConnectionError("Name or service not known")), "cannot reach the Hub"),
        (("whoami", http_error(401)), "the token was rejected"),
        (("auth_check", http_error(403)), "cannot write to me/emotion"),
        (("whoami", huggingface_hub.errors.LocalTokenNotFoundError("no token")), "needs a Hub token"),
    ],
)
def test_push_problems_stop_the_run_before_training(fake_hub, fer_folder, tmp_path, failure, message):
    fake_hub["fail"] = dict([failure])
    out = tmp_path / "run"
    with pytest.raises(SystemExit, match=message) as exit_info:
        emotion_script.main(["--dataset", str(fer_folder), "--output_dir", str(out), "--push_to_hub",
                             "--hub_model_id", "me/emotion", *TINY])  # fmt: skip
    assert "\n" not in str(exit_info.value)  # one line, not a traceback
    assert not (out / "training_args.json").exists()  # no training started


def test_a_failed_push_after_training_keeps_the_outputs_and_says_how_to_push(fake_hub, fer_folder, tmp_path):
    fake_hub["fail"] = {"upload_folder": ConnectionError("connection reset")}
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        emotion_script.main(["--dataset", str(fer_folder), "--output_dir", str(out), "--num_epochs", "1",
                             "--push_to_hub", "--hub_model_id", "emotion", *TINY])  # fmt: skip
    message = str(exit_info.value)
    command = f"python -m emoreply.training.hub {out} me/emotion"
    assert "outputs in" in message and command in message
    for name in ("model.safetensors", "README.md", "eval_results.json", "training_history.json"):
        assert (out / name).exists(), name
    # The command from the message pushes the run once the Hub is back, checkpoints left out.
    fake_hub["fail"] = {}
    assert hub.main(command.split()[3:]) == "https://huggingface.co/me/emotion"
    assert "model.safetensors" in fake_hub["uploaded"] and fake_hub["calls"][-1] == "upload_folder"


def test_missing_data_is_one_line_naming_the_flag(tmp_path, dailydialog_dir):
    for script in ("train/train_emotion_cnn.py", "train/train_reply.py"):
        module = load_script(script)
        with pytest.raises(SystemExit, match=f"--dataset {tmp_path / 'nope'}: no such folder") as exit_info:
            module.main(["--dataset", str(tmp_path / "nope"), "--output_dir", str(tmp_path / "out")])
        assert "\n" not in str(exit_info.value) and "README" in str(exit_info.value)
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "train.jsonl").write_text((dailydialog_dir / "train.jsonl").read_text())
    with pytest.raises(SystemExit, match=r"no validation.jsonl, test.jsonl in that folder"):
        data_sources.check_dataset(tmp_path / "half", "dailydialog")
    with pytest.raises(SystemExit, match="not loadable from the Hub"):  # offline in the tests
        data_sources.check_dataset("someone/fer2013", "fer2013")


def test_help_shows_the_default_and_the_expected_fields(capsys):
    for script, words in (
        ("train/train_emotion_cnn.py", ["../shared/data/fer2013", "label (0-6 in FER order"]),
        ("train/train_reply.py", ["../shared/data/dailydialog", '"emotions"']),
    ):
        with pytest.raises(SystemExit):
            load_script(script).parse_args(["--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert all(word in text for word in words), (script, text)


def test_kaggle_csv_and_hub_style_copies_convert_to_the_local_layouts(tmp_path, dailydialog_dir):
    import datasets
    import numpy as np

    from emoreply.training.fer_data import load_fer_split
    from emoreply.training.reply_data import load_dialogues

    rows = ["emotion,pixels,Usage"] + [
        f"{i % 7},{' '.join(str(v) for v in np.full(48 * 48, i * 10))},{usage}"
        for i, usage in enumerate(["Training"] * 7 + ["PublicTest"] * 3 + ["PrivateTest"] * 2)
    ]
    (tmp_path / "fer2013.csv").write_text("\n".join(rows) + "\n")
    data_sources.main(["fer2013", str(tmp_path / "fer"), "--source", str(tmp_path / "fer2013.csv")])
    images, labels = load_fer_split(str(tmp_path / "fer"), "train")
    assert images.shape == (7, 1, 48, 48) and labels.tolist() == list(range(7)) and int(images[3].max()) == 30
    assert len(load_fer_split(str(tmp_path / "fer"), "test")[1]) == 3

    # DailyDialog's original column names (dialog, emotion) in a parquet copy, as on the Hub's parquet branch.
    hub_copy = tmp_path / "hub-copy"
    hub_copy.mkdir()
    for split in ("train", "validation", "test"):
        dialogues = [json.loads(line) for line in (dailydialog_dir / f"{split}.jsonl").open()]
        datasets.Dataset.from_dict(
            {"dialog": [d["utterances"] for d in dialogues], "emotion": [d["emotions"] for d in dialogues]}
        ).to_parquet(str(hub_copy / f"{split}-00000-of-00001.parquet"))
    data_sources.main(["dailydialog", str(tmp_path / "dd"), "--source", str(hub_copy)])
    assert load_dialogues(tmp_path / "dd", "test") == load_dialogues(dailydialog_dir, "test")
