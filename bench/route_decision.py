"""Latency of one learned routing decision (embed the prompt + predict P(cheap passes)), beside the embedding
call alone and the lexical decision (featurise the text + predict, no model), over >= 1,000 decisions in one
run. Target: p99 <= 5 ms.

The policies are logistic regressions trained on GSM8K's recorded outcomes: one on MiniLM embeddings (the
prompts are embedded once, from the cache when warm), one on lexical features (hashed TF-IDF + prompt
statistics). Timed prompts are distinct GSM8K questions not seen in training, embedded without the cache, so
every MiniLM decision pays for a real llama.cpp forward pass. The lexical decision is timed as the Router makes
it: ``LearnedStartTier.start_tier`` on ``RouteFeatures(text=...)``.

    python bench/route_decision.py                 # 1,000 decisions
    python bench/route_decision.py --decisions 3000 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from promptkit.embeddings import LlamaEmbedder, default_embedder_path
from promptkit.evals.routing import embed_texts, load_routellm, load_router_embedder, train_from_routellm
from promptkit.routing import RouteFeatures
from promptkit.routing.learned import LearnedStartTier


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--decisions", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--train", type=int, default=300, help="GSM8K queries to train the policy on")
    args = parser.parse_args(argv)

    data = load_routellm("gsm8k")
    train, timed = data.subset(range(args.train)), data.prompts[args.train :]
    cached = load_router_embedder(n_threads=args.threads)
    policy = train_from_routellm(train, embed_texts(train.prompts, cached), embedder_id=cached.model_id)
    embedder = LlamaEmbedder(default_embedder_path(), n_threads=args.threads)  # no cache: a real forward pass
    prompts = [timed[i % len(timed)] for i in range(args.decisions)]
    for text in prompts[:20]:  # warm-up
        policy.predict_pass(embedding=embedder.embed_array([text])[0])

    embed_only: list[float] = []
    decisions: list[float] = []
    skips = 0
    for text in prompts:
        started = time.perf_counter()
        embedder.embed_array([text])
        embed_only.append(time.perf_counter() - started)
        started = time.perf_counter()
        vector = embedder.embed_array([text])[0]
        p = policy.predict_pass(embedding=vector)
        skip = p < policy.threshold
        decisions.append(time.perf_counter() - started)
        skips += skip
    # A prompt seen before (retries, repeated templates): the embedding comes from the SQLite cache.
    cached.embed_array(prompts[:50])
    from_cache: list[float] = []
    for i in range(args.decisions):
        started = time.perf_counter()
        policy.predict_pass(embedding=cached.embed_array([prompts[i % 50]])[0])
        from_cache.append(time.perf_counter() - started)
    lexical = LearnedStartTier(train_from_routellm(train, features="lexical"))
    tiers = ("cheap", "strong")
    for text in prompts[:20]:  # warm-up (the policy's featuriser is built on first use)
        lexical.start_tier(RouteFeatures(template="q", text=text), tiers)
    lexical_decisions: list[float] = []
    lexical_skips = 0
    for text in prompts:
        started = time.perf_counter()
        chosen = lexical.start_tier(RouteFeatures(template="q", text=text), tiers)
        lexical_decisions.append(time.perf_counter() - started)
        lexical_skips += chosen is not None
    predict_only: list[float] = []
    vector = embedder.embed_array([prompts[0]])[0]
    for _ in range(args.decisions):
        started = time.perf_counter()
        policy.predict_pass(embedding=vector)
        predict_only.append(time.perf_counter() - started)
    print(
        f"{args.decisions} decisions, {args.threads} llama.cpp thread(s), GSM8K prompts (mean "
        f"{statistics.mean(len(embedder.tokenize(t)) for t in prompts[:200]):.0f} tokens)"
    )
    print(f"{'':24s} {'p50 ms':>8s} {'p99 ms':>8s}")
    rows = (
        ("embed only", embed_only),
        ("embed + predict", decisions),
        ("cached embed + predict", from_cache),
        ("predict only", predict_only),
        ("lexical decision", lexical_decisions),
    )
    for name, values in rows:
        print(f"{name:24s} {_pct(values, 50):8.3f} {_pct(values, 99):8.3f}")
    verdicts = (
        ("fresh-prompt decision", decisions),
        ("cached-prompt decision", from_cache),
        ("lexical decision", lexical_decisions),
    )
    for name, values in verdicts:
        verdict = "meets" if _pct(values, 99) <= 5.0 else "misses"
        print(f"{name} p99 {verdict} the 5 ms target")
    print(f"{skips} of {args.decisions} decisions would skip the cheap tier (threshold {policy.threshold})")
    print(
        f"{lexical_skips} of {args.decisions} lexical decisions would skip it (threshold {lexical.threshold})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
