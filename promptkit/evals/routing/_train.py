"""Skip policies trained on recorded benchmark outcomes (RouteLLM's data): offline, for ``route train``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from promptkit.errors import RoutingError
from promptkit.routing.learned import LEXICAL_DIM, LexicalFeaturizer, RoutingPolicy, fit_pass_model

if TYPE_CHECKING:
    import numpy as np

    from promptkit.evals.routing._routellm import RouteLLMData

__all__ = ["train_from_routellm"]


def train_from_routellm(
    data: RouteLLMData,
    embeddings: np.ndarray | None = None,
    *,
    embedder_id: str | None = None,
    features: str = "embedding",
    lexical_dim: int = LEXICAL_DIM,
    model: str = "logreg",
    threshold: float = 0.2,
    seed: int = 0,
) -> RoutingPolicy:
    """Fit P(weak model passes) from a RouteLLM-format benchmark.

    ``features="embedding"``: on the given MiniLM prompt embeddings (``embedder_id`` names the model);
    ``features="lexical"``: on hashed TF-IDF + prompt statistics of the prompt text, so deciding needs no
    embedding model (``embeddings`` unused; ``lexical_dim`` hashed buckets). Pass = correct on GSM8K/MMLU; on MT-Bench (graded), a weak grade
    at least the strong model's.
    """
    import numpy as np

    y = (data.weak >= data.strong).astype(np.float64) if data.graded else data.weak.astype(np.float64)
    if features == "lexical":
        featurizer = LexicalFeaturizer(lexical_dim).fit(data.prompts)
        spec = [featurizer.to_dict()]
        X = featurizer.transform(data.prompts)
    elif features == "embedding":
        if embeddings is None or embedder_id is None:
            raise RoutingError(
                "an embedding policy needs the prompts' embeddings and the embedder's id",
                location=f"routellm:{data.benchmark}",
            )
        spec = [
            {"type": "embedding", "field": "prompt", "model": embedder_id, "dim": int(embeddings.shape[1])}
        ]
        X = np.asarray(embeddings, dtype=np.float64)
    else:
        raise RoutingError(
            f"unknown policy features {features!r}; expected 'embedding' or 'lexical'", location="--features"
        )
    policy = RoutingPolicy(spec, fit_pass_model(X, y, model, seed), threshold)
    policy.trained = {
        "source": f"routellm:{data.benchmark}",
        "rows": len(y),
        "passed": int(y.sum()),
        "model": model,
        "features": features,
        "created": time.time(),
    }
    return policy
