"""The emotion judge: train, predict, save without pickle, load, same predictions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from emoreply.reply.prompt import normalize_text
from emoreply.training.judge import VECTORIZERS, EmotionJudge

TEXTS = [
    "I am so happy today!",
    "What a wonderful day, great!",
    "I hate this, I am furious!",
    "Stop it, you make me angry!",
    "This is fine.",
    "The station is over there.",
    "I love it, fantastic!",
    "Leave me alone, I'm angry!",
    "It is at three o'clock.",
    "OK, see you then.",
]
LABELS = ["happy", "happy", "angry", "angry", "neutral", "neutral", "happy", "angry", "neutral", "neutral"]


@pytest.fixture(scope="module")
def judge() -> EmotionJudge:
    return EmotionJudge.fit(TEXTS * 2, LABELS * 2, C=10.0, min_df=1)


def test_judge_learns_and_matches_sklearn(judge):
    assert judge.classes == ["angry", "happy", "neutral"]  # project order, only the seen emotions
    assert judge.predict(TEXTS) == LABELS
    assert judge.predict([]) == []
    # Features rebuilt from arrays equal sklearn's TfidfVectorizer on the same vocabulary and idf.
    docs = [normalize_text(t) for t in TEXTS]
    blocks = []
    for name, params in VECTORIZERS.items():
        vec = TfidfVectorizer(sublinear_tf=True, min_df=1, **params).fit(docs * 2)
        assert sorted(vec.vocabulary_) == sorted(judge.vocabularies[name])
        blocks.append(vec.transform(docs)[:, [vec.vocabulary_[t] for t in judge.vocabularies[name]]])
    assert np.allclose(sparse.hstack(blocks).toarray(), judge.features(TEXTS).toarray())


def test_save_load_round_trip_without_pickle(judge, tmp_path):
    judge.metrics = {"accuracy": 1.0}
    judge.save(tmp_path)
    for f in tmp_path.iterdir():
        assert f.suffix in {".json", ".safetensors"}, f
        assert b"\x80\x04" not in f.read_bytes()[:2]  # no pickle header
    loaded = EmotionJudge.load(tmp_path)
    assert loaded.predict(TEXTS + ["Wow 😀 日本"]) == judge.predict(TEXTS + ["Wow 😀 日本"])
    assert np.allclose(loaded.predict_proba(TEXTS), judge.predict_proba(TEXTS), atol=1e-5)
    assert loaded.metrics == {"accuracy": 1.0}


def test_load_missing_folder_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="not an emotion judge folder"):
        EmotionJudge.load(tmp_path / "nope")
