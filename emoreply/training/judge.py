"""The emotion judge: which emotion does a text express? Used to score generated replies.

TF-IDF over word 1-2-grams and character 2-5-grams (within words) feeds a class-balanced
multinomial logistic regression, trained on DailyDialog utterances. Saved as plain arrays
(safetensors) and JSON, and rebuilt from them, so loading a judge never unpickles anything.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize

from ..emotion_cnn import EMOTIONS
from ..reply.prompt import normalize_text

CONFIG_FILE, VOCAB_FILE, WEIGHTS_FILE = "judge_config.json", "judge_vocab.json", "judge.safetensors"

# Word tokens keep "!" and "?" and one-letter words: both carry tone ("I!", "what?!").
VECTORIZERS: dict[str, dict[str, Any]] = {
    "word": {"analyzer": "word", "ngram_range": (1, 2), "token_pattern": r"(?u)\b\w+\b|[!?]"},
    "char": {"analyzer": "char_wb", "ngram_range": (2, 5)},
}


class EmotionJudge:
    """TF-IDF + logistic regression emotion classifier, held as arrays: ``predict(texts) -> emotions``."""

    def __init__(
        self,
        vocabularies: dict[str, list[str]],
        idf: dict[str, np.ndarray],
        coef: np.ndarray,
        intercept: np.ndarray,
        classes: Sequence[str] = EMOTIONS,
        metrics: dict[str, Any] | None = None,
        vectorizers: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.vocabularies, self.idf = vocabularies, idf
        self.coef = np.asarray(coef, dtype=np.float64)  # (num_classes, num_features)
        self.intercept = np.asarray(intercept, dtype=np.float64)  # (num_classes,)
        self.classes = list(classes)
        self.metrics = metrics or {}
        self.vectorizers = {  # JSON turns tuples into lists; CountVectorizer wants a tuple
            name: {**params, "ngram_range": tuple(params["ngram_range"])}
            for name, params in (vectorizers or VECTORIZERS).items()
        }
        # A fixed vocabulary makes CountVectorizer usable without fitting: counts only, no state.
        self._counters = {
            name: CountVectorizer(
                vocabulary={t: i for i, t in enumerate(vocab)},
                lowercase=True,
                dtype=np.float64,
                **self.vectorizers[name],
            )
            for name, vocab in vocabularies.items()
        }
        if self.coef.shape != (len(self.classes), sum(len(v) for v in vocabularies.values())):
            raise ValueError(
                f"Judge weights {self.coef.shape} do not match {len(self.classes)} classes and the vocabulary"
            )

    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        emotions: Sequence[str],
        C: float = 2.0,
        max_features: dict[str, int] | None = None,
        min_df: int = 2,
        max_iter: int = 2000,
    ) -> EmotionJudge:
        """Train on ``texts`` labelled with project emotion names (normalised like the replies are)."""
        max_features = max_features or {"word": 50_000, "char": 100_000}
        docs = [normalize_text(t) for t in texts]
        vecs = {
            name: TfidfVectorizer(sublinear_tf=True, min_df=min_df, max_features=max_features[name], **params)
            for name, params in VECTORIZERS.items()
        }
        X = sparse.hstack([v.fit_transform(docs) for v in vecs.values()]).tocsr()  # (N, F)
        classes = [e for e in EMOTIONS if e in set(emotions)]
        y = np.asarray([classes.index(e) for e in emotions])
        clf = LogisticRegression(C=C, class_weight="balanced", max_iter=max_iter).fit(X, y)
        coef, intercept = clf.coef_, clf.intercept_
        if len(classes) == 2:  # binary LR keeps one row: expand to two logits for the softmax
            coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
        vocabularies = {}
        for name, v in vecs.items():
            terms = [""] * len(v.vocabulary_)
            for term, i in v.vocabulary_.items():
                terms[i] = term
            vocabularies[name] = terms
        return cls(vocabularies, {n: v.idf_ for n, v in vecs.items()}, coef, intercept, classes)

    def features(self, texts: Sequence[str]):
        """TF-IDF rows (N, F), computed exactly as TfidfVectorizer(sublinear_tf, l2) does."""
        docs = [normalize_text(t) for t in texts]
        blocks = []
        for name, counter in self._counters.items():
            X = counter.transform(docs).tocsr()
            np.log(X.data, X.data)
            X.data += 1.0
            X.data *= self.idf[name][X.indices]
            blocks.append(normalize(X, norm="l2", copy=False))
        return sparse.hstack(blocks).tocsr()

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities (N, num_classes), columns in ``self.classes`` order."""
        logits = self.features(texts) @ self.coef.T + self.intercept
        logits = np.asarray(logits) - np.max(logits, axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(1, keepdims=True)

    def predict(self, texts: Sequence[str]) -> list[str]:
        """The most likely emotion of each text."""
        if len(texts) == 0:
            return []
        return [self.classes[i] for i in self.predict_proba(texts).argmax(1)]

    def save(self, folder: str | Path) -> Path:
        """JSON (config, vocabulary) + safetensors (idf, weights): no pickle anywhere."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = {"classes": self.classes, "vectorizers": self.vectorizers, "metrics": self.metrics}
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        (folder / VOCAB_FILE).write_text(json.dumps(self.vocabularies, ensure_ascii=False))
        # C order explicitly: safetensors writes the raw buffer, and sklearn's coef_ can be Fortran-ordered.
        tensors = {f"idf_{n}": v for n, v in self.idf.items()} | {"coef": self.coef, "intercept": self.intercept}
        tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
        save_file(tensors, str(folder / WEIGHTS_FILE))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> EmotionJudge:
        """Rebuild a saved judge from its arrays; a clear error when the folder is missing or incomplete."""
        folder = Path(folder)
        missing = [f for f in (CONFIG_FILE, VOCAB_FILE, WEIGHTS_FILE) if not (folder / f).is_file()]
        if missing:
            raise FileNotFoundError(
                f"{folder} is not an emotion judge folder (missing {', '.join(missing)}); "
                "train one with train/train_judge.py"
            )
        config = json.loads((folder / CONFIG_FILE).read_text())
        vocabularies = json.loads((folder / VOCAB_FILE).read_text())
        arrays = load_file(str(folder / WEIGHTS_FILE))
        idf = {n: arrays[f"idf_{n}"].astype(np.float64) for n in vocabularies}
        return cls(
            vocabularies,
            idf,
            arrays["coef"],
            arrays["intercept"],
            config["classes"],
            config.get("metrics"),
            config["vectorizers"],
        )
