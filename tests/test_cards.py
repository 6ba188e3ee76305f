"""Model cards: the bundled READMEs are what the templates make of their folders' files, so they cannot drift."""

from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from emoreply.loading import PRETRAINED_DIR
from emoreply.training.cards import TEMPLATES, emotion_card, reply_card

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = {"emotion-cnn": emotion_card, "reply-smollm2": reply_card, "reply-t5": reply_card}


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_card_is_its_folder_rendered_again(name, monkeypatch):
    # A training run names its base folder relative to where it was launched: the repository root.
    monkeypatch.chdir(ROOT)
    folder = PRETRAINED_DIR / name
    rendered = str(BUNDLED[name](folder))
    assert rendered == (folder / "README.md").read_text(), (
        f"{folder}/README.md differs from its rendering: run emoreply.training.cards.write_*_card on the folder"
    )
    for block in re.findall(r"```python\n(.*?)```", rendered, re.S):  # the "How to use" snippets parse
        ast.parse(block)


def test_the_templates_are_the_only_cards_outside_the_model_folders():
    assert sorted(p.name for p in TEMPLATES.iterdir()) == ["emotion_cnn.md.j2", "reply.md.j2"]


def test_bundled_emotion_card_reports_its_default_view_in_the_model_index():
    results = json.loads((PRETRAINED_DIR / "emotion-cnn" / "eval_results.json").read_text())
    card = ModelCard((PRETRAINED_DIR / "emotion-cnn" / "README.md").read_text())
    accuracy, plain, macro_f1 = card.data.eval_results
    view = results["default_view"]
    assert (accuracy.metric_value, plain.metric_value, macro_f1.metric_value) == (
        round(results[view]["accuracy"], 4),
        round(results["no_tta"]["accuracy"], 4),
        round(results[view]["macro_f1"], 4),
    )
    assert accuracy.dataset_type == "fer2013" and accuracy.dataset_split == "test"


def test_reply_card_names_the_guidance_and_its_ablation_row(tmp_path):
    folder = tmp_path / "reply-smollm2"
    shutil.copytree(PRETRAINED_DIR / "reply-smollm2", folder, ignore=shutil.ignore_patterns("*.safetensors"))
    evaluation = json.loads((folder / "eval_results.json").read_text())
    rows = evaluation["rows"]
    unguided = {**rows["fine_tuned"], "controllability": 0.3}  # an ablation row of the same shape
    evaluation["rows"] = {"fine_tuned": rows["fine_tuned"], "no_guidance": unguided, **rows}
    evaluation["rows"]["fine_tuned"] = {**rows["fine_tuned"], "relevance_top1": 0.25, "relevance_pmi": 0.5}
    evaluation.update(emotion_guidance=1.5, context_contrast=0.5, plausibility=0.1, reference_copy_rate=0.005)
    evaluation["judge"].update(reference_accuracy=0.8)
    (folder / "eval_results.json").write_text(json.dumps(evaluation))
    card = reply_card(folder, repo="someone/reply")
    assert "emotion guidance 1.5 (classifier-free guidance" in card.text
    assert "plus 0.5 x its difference from the same chat without the message (context contrast)" in card.text
    assert "at least 0.1 x as likely as the most likely one" in card.text
    assert "`emotion_guidance`, `context_contrast`, `plausibility` in generation_config.json" in card.text
    assert "| fine-tuned, no emotion guidance |" in card.text
    assert "| relevance top-1 | PMI (nats) |" in card.text and "| 25.0% | 0.50 |" in card.text
    assert "(the human reference replies: 0.50%)" in card.text
    assert "on these reference replies: accuracy 80.0%" in card.text
    assert 'ReplyDrafter.from_pretrained("someone/reply")' in card.text
    assert card.data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct" and card.data.library_name == "peft"
    index = {r.metric_name: r.metric_value for r in card.data.eval_results}
    assert index["Controllability (judged, 7 emotions)"] == round(rows["fine_tuned"]["controllability"], 4)


def test_a_reply_card_before_evaluation_says_so(tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(PRETRAINED_DIR / "reply-t5", folder, ignore=shutil.ignore_patterns("*.safetensors", "eval_*"))
    card = reply_card(folder)
    assert "Not evaluated yet: run `train/evaluate_replies.py`" in card.text
    assert card.data.eval_results is None and "model-index" not in str(card)
    assert 'ReplyDrafter.from_pretrained("emoreply/reply-t5-dailydialog")' in card.text  # a T5 names the T5 repo
