"""The match rules of the semantic cache that are about text: a lexical similarity to sharpen the embedding
cosine, and guards against the opposite-meaning failure (negation, numbers, antonyms, swapped operands).

Embeddings place "How do I enable X?" and "How do I disable X?" close together (MiniLM: 0.82), and
"Is A bigger than B?" next to "Is B bigger than A?" (0.98). No threshold separates those from paraphrases,
so these guards look at the words themselves and refuse the hit.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from functools import lru_cache

__all__ = ["GUARDS", "char_ngrams", "guard_conflict", "lexical_similarity", "ngram_cosine"]

GUARDS = ("negation", "number", "antonym", "reversal")

# Hyphenated words stay whole: "no-code" and "non-streaming" are not negations.
_WORD = re.compile(r"[a-z0-9]+(?:['.\-][a-z0-9]+)*")
_NUMBER = re.compile(r"^\d+(?:\.\d+)*$")
_NEGATIONS = frozenset(
    {"not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "cannot", "nowhere"}
)


# Pairs of opposite meanings; each side lists the word forms that count.
_ANTONYM_BASES = [
    ("enable", "disable"), ("increase", "decrease"), ("add", "remove"), ("add", "delete"),
    ("allow", "deny"), ("allow", "block"), ("start", "stop"), ("open", "close"), ("accept", "reject"),
    ("minimum", "maximum"), ("min", "max"), ("before", "after"), ("above", "below"), ("upper", "lower"),
    ("upload", "download"), ("import", "export"), ("encrypt", "decrypt"), ("compress", "decompress"),
    ("install", "uninstall"), ("lock", "unlock"), ("show", "hide"), ("true", "false"), ("succeed", "fail"),
    ("success", "failure"), ("buy", "sell"), ("push", "pull"), ("input", "output"), ("first", "last"),
    ("more", "less"), ("more", "fewer"), ("bigger", "smaller"), ("larger", "smaller"), ("higher", "lower"),
    ("faster", "slower"), ("best", "worst"), ("better", "worse"), ("always", "never"), ("inside", "outside"),
    ("include", "exclude"), ("win", "lose"), ("positive", "negative"), ("left", "right"), ("public", "private"),
    ("encode", "decode"), ("serialize", "deserialize"), ("connect", "disconnect"), ("ascending", "descending"),
    ("increment", "decrement"), ("expand", "collapse"), ("merge", "split"), ("sync", "async"),
    ("synchronous", "asynchronous"), ("mount", "unmount"), ("subscribe", "unsubscribe"), ("on", "off"),
    ("cheap", "expensive"), ("cheapest", "most expensive"), ("old", "new"), ("oldest", "newest"),
    ("earliest", "latest"), ("valid", "invalid"), ("legal", "illegal"), ("safe", "unsafe"),
    ("hot", "cold"), ("north", "south"), ("east", "west"), ("like", "dislike"), ("love", "hate"),
]  # fmt: skip
# Words whose two sides play different roles: "A than B", "from A to B", "A before B".
# ("to"/"from" are too often infinitives or loose prepositions; swaps around them are caught as pure swaps.)
_RELATIONS = frozenset({"than", "vs", "versus", "before", "after", "beats", "outperforms", "precedes"})
_STOPWORDS = frozenset(
    {"a", "an", "the", "is", "are", "was", "were", "be", "do", "does", "did", "i", "you", "it", "of", "in",
     "on", "for", "and", "or", "how", "what", "which", "who", "can", "should", "my", "me", "we", "this",
     "that", "with", "by", "at", "as", "there", "here"}
)  # fmt: skip


def _forms(word: str) -> frozenset[str]:
    """A word and its common inflections (enable → enables, enabled, enabling)."""
    if " " in word:
        return frozenset({word})
    stem = word[:-1] if word.endswith("e") else word
    return frozenset({word, word + "s", word + "es", stem + "ed", stem + "ing", word + "d", stem + "ion"})


_ANTONYMS: list[tuple[frozenset[str], frozenset[str]]] = [(_forms(a), _forms(b)) for a, b in _ANTONYM_BASES]


def _words(text: str) -> list[str]:
    lowered = text.lower().replace("\u2019", "'")
    return _WORD.findall(lowered)


def _negated(words: list[str]) -> bool:
    # A leading "No," answers a question; it does not negate the statement.
    body = words[1:] if words[:1] == ["no"] else words
    return any(w in _NEGATIONS or w.endswith("n't") for w in body)


def _numbers(words: list[str]) -> frozenset[str]:
    found = set()
    for w in words:
        if _NUMBER.match(w):
            # "3.0" and "3" say the same number; "1,000" was split by the tokenizer and stays two parts.
            found.add(re.sub(r"(?:\.0+)+$", "", w) or "0")
    return frozenset(found)


def _has(words: set[str], text: str, forms: frozenset[str]) -> bool:
    return any((f in text) if " " in f else (f in words) for f in forms)


def _antonym(a_words: set[str], a_text: str, b_words: set[str], b_text: str) -> bool:
    for left, right in _ANTONYMS:
        a_left, a_right = _has(a_words, a_text, left), _has(a_words, a_text, right)
        b_left, b_right = _has(b_words, b_text, left), _has(b_words, b_text, right)
        # One side says "enable" and not "disable", the other the reverse.
        if (a_left and not a_right and b_right and not b_left) or (
            a_right and not a_left and b_left and not b_right
        ):
            return True
    return False


def _overlap(a: list[str], b: list[str]) -> float:
    """Jaccard of the content words, negators left out: how much the two say the same thing in the same words.

    Negation is only judged between close wordings; a rephrasing ("in the absence of" for "without") says
    the same with other words, and the embedding already weighs it.
    """
    sa = {w for w in _content(a) if w not in _NEGATIONS and not w.endswith("n't")}
    sb = {w for w in _content(b) if w not in _NEGATIONS and not w.endswith("n't")}
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


def _content(words: list[str]) -> list[str]:
    return [w for w in words if w not in _STOPWORDS]


def _swapped(a: list[str], b: list[str]) -> bool:
    """The same words in the same order except two that traded places."""
    if a == b or len(a) != len(b) or Counter(a) != Counter(b):
        return False
    diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    return len(diff) == 2 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]


def _reversed(a: list[str], b: list[str]) -> bool:
    """The same words with two operands swapped: "A than B" / "B than A", "Alice loves Bob" / "Bob loves Alice"."""
    ca, cb = _content(a), _content(b)
    # On all the words: "list in Python" / "Python list" swaps two content words and means the same.
    if _swapped(a, b):
        return True
    shared, either = set(ca) & set(cb), set(ca) | set(cb)
    if len(shared) < 0.8 * len(either):
        return False  # a reworded sentence, not the same words rearranged
    for relation in _RELATIONS & set(a) & set(b):
        if a.count(relation) != 1 or b.count(relation) != 1:
            continue
        ia, ib = a.index(relation), b.index(relation)
        before_a, after_a = set(a[:ia]), set(a[ia + 1 :])
        before_b, after_b = set(b[:ib]), set(b[ib + 1 :])
        moved_right = (before_a & after_b) - after_a - before_b
        moved_left = (after_a & before_b) - before_a - after_b
        if moved_right and moved_left:
            return True
    return False


def guard_conflict(query: str, cached: str, guards: tuple[str, ...] = GUARDS) -> str | None:
    """The name of the first guard that sees opposite meanings in the two texts, or None.

    negation: one says "not"/"never"/"doesn't" and the other does not; number: both mention numbers and they
    differ; antonym: one says "enable" where the other says "disable"; reversal: swapped operands.
    """
    if query == cached:
        return None
    qa, ca = _words(query), _words(cached)
    if "negation" in guards and _negated(qa) != _negated(ca) and _overlap(qa, ca) >= 0.5:
        return "negation"
    if "number" in guards:
        nq, nc = _numbers(qa), _numbers(ca)
        if nq and nc and nq != nc:
            return "number"
    if "antonym" in guards and _antonym(set(qa), " ".join(qa), set(ca), " ".join(ca)):
        return "antonym"
    if "reversal" in guards and _reversed(qa, ca):
        return "reversal"
    return None


@lru_cache(maxsize=8192)
def char_ngrams(text: str, n: int = 3) -> dict[str, int]:
    """Character n-gram counts of the lower-cased text with whitespace collapsed (cached: keys are reused)."""
    padded = " " + " ".join(text.lower().split()) + " "
    return dict(Counter(padded[i : i + n] for i in range(max(0, len(padded) - n + 1))))


def ngram_cosine(a: dict[str, int], b: dict[str, int]) -> float:
    if len(a) > len(b):
        a, b = b, a
    dot = sum(v * b.get(k, 0) for k, v in a.items())
    if not dot:
        return 0.0
    norm = math.sqrt(sum(v * v for v in a.values()) * sum(v * v for v in b.values()))
    return dot / norm


def lexical_similarity(a: str, b: str) -> float:
    """Cosine of character-trigram counts: 1.0 for the same text, near 0 for unrelated ones.

    It rewards shared names, identifiers and numbers, which sentence embeddings tend to blur.
    """
    return ngram_cosine(char_ngrams(a), char_ngrams(b))
