"""The converted model computes what all-MiniLM-L6-v2 computes: checked against an independent numpy BERT,
and against sentence-transformers itself when it happens to be installed."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

SENTENCES = [
    "Hello, World! The café is unbelievably nice.",
    "How do I reset my password?",
    "naïve résumé 東京 emoji 🙂 tabs\tand\nnewlines",
]


@pytest.mark.parametrize("text", SENTENCES)
def test_matches_a_numpy_bert_forward_pass(embedder, reference, text: str):
    ids, expected = reference(text)
    assert embedder.tokenize(text) == ids  # the vocabulary and WordPiece rules survived conversion
    got = np.asarray(embedder.embed_one(text))
    assert float(got @ expected) >= 0.999
    assert np.linalg.norm(got) == pytest.approx(1.0, abs=1e-5)


def test_long_inputs_are_truncated_like_sentence_transformers(embedder, reference):
    text = " ".join(f"word{i} is followed by another" for i in range(120))  # far beyond 256 tokens
    ids, expected = reference(text, max_tokens=256)
    tokens = embedder.tokenize(text)
    assert len(tokens) == 256 and tokens == ids and tokens[-1] == 102  # the closing [SEP] is kept
    assert float(np.asarray(embedder.embed_one(text)) @ expected) >= 0.999


def test_batching_does_not_change_vectors(embedder):
    texts = [f"sentence {i}: " + "padding words " * (i % 9) for i in range(70)]  # several decodes
    together = np.asarray(embedder.embed(texts))
    alone = np.asarray([embedder.embed_one(t) for t in texts[:5] + texts[-5:]])
    packed = np.concatenate([together[:5], together[-5:]])
    # Another batch shape changes float summation order a little, never the meaning (cross-talk would).
    assert np.all((packed * alone).sum(axis=1) > 0.99999)


@pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None,
    reason="sentence-transformers is not installed (optional; the numpy reference covers parity without torch)",
)
def test_matches_sentence_transformers(embedder, minilm_source):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm_source), device="cpu")
    texts = [*SENTENCES, "A much longer text " * 80]
    expected = model.encode(texts, normalize_embeddings=True)
    for got, want in zip(embedder.embed(texts), expected, strict=True):
        assert float(np.asarray(got) @ want) >= 0.999
