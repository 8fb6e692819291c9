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
from collections.abc import Set as AbstractSet
from functools import lru_cache

__all__ = ["GUARDS", "char_ngrams", "guard_conflict", "lexical_similarity", "ngram_cosine"]

GUARDS = ("negation", "number", "antonym", "reversal")

# Hyphenated words stay whole: "no-code" and "non-streaming" are not negations.
_WORD = re.compile(r"[a-z0-9]+(?:['.\-][a-z0-9]+)*")
_NUMBER = re.compile(r"^\d+(?:\.\d+)*$")
_NEGATIONS = frozenset(
    {"not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "cannot", "nowhere"}
)
# Words that say "not" without the word: "in the absence of X" = "if there's no X", "without X" = "with no X",
# "all but X" = "all except X". Counting them keeps the guard from refusing a rephrased negation (both sides
# are then negated).
_IMPLICIT_NEGATIONS = frozenset(
    {"absence", "absent", "without", "lack", "lacks", "lacking", "avoid", "avoids", "avoiding", "prevent",
     "prevents", "preventing", "except", "excluding", "omitting"}
)  # fmt: skip
# "with the column removed" = "without the column": these participles, a few words after "with", negate.
_REMOVED = frozenset({"removed", "omitted", "excluded", "dropped", "deleted", "stripped"})
# A negator before one of these says the positive: "don't forget to" = "remember to", "never fails to" = "always".
_NEGATIVE_VERBS = frozenset(
    form for verb in ("forget", "fail", "neglect", "hesitate") for form in (verb, verb + "s", verb + "ed")
)
# "not mandatory" = "optional": a negated word whose complement the other text says is not a negation there.
_COMPLEMENT_BASES = [
    ("mandatory", "optional"), ("required", "optional"), ("necessary", "optional"),
    ("necessary", "unnecessary"), ("compulsory", "optional"), ("same", "different"), ("allowed", "forbidden"),
    ("allowed", "prohibited"), ("permitted", "forbidden"), ("enabled", "disabled"), ("visible", "hidden"),
    ("present", "missing"), ("sufficient", "insufficient"), ("enough", "insufficient"),
]  # fmt: skip
_COMPLEMENTS: dict[str, frozenset[str]] = {}
for _a, _b in _COMPLEMENT_BASES:
    _COMPLEMENTS[_a] = _COMPLEMENTS.get(_a, frozenset()) | {_b}
    _COMPLEMENTS[_b] = _COMPLEMENTS.get(_b, frozenset()) | {_a}
_NEGATING_PREFIXES = ("un", "in", "im", "il", "ir", "non")
_ARTICLES = frozenset({"a", "an", "the", "be", "been"})
# "No," / "No." / "No!" opening a sentence answers a question; "No information is given" negates.
_ANSWER_NO = re.compile(r"^\W*no\s*[,.!;:\u2014-]", re.IGNORECASE)


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
# Pairs that compare two things: their opposite with the two things traded back says the same.
_COMPARATIVES = frozenset(
    i
    for i, (a, _) in enumerate(_ANTONYM_BASES)
    if a in {"more", "bigger", "larger", "higher", "faster", "better", "before", "above"}
)
# Word form -> the (pair, side) it says; phrases ("most expensive") are matched in the joined words.
_ANTONYM_WORDS: dict[str, list[tuple[int, int]]] = {}
_ANTONYM_PHRASES: list[tuple[str, int, int]] = []
for _pair, _sides in enumerate(_ANTONYMS):
    for _side, _group in enumerate(_sides):
        for _form in _group:
            if " " in _form:
                _ANTONYM_PHRASES.append((_form, _pair, _side))
            else:
                _ANTONYM_WORDS.setdefault(_form, []).append((_pair, _side))


def _words(text: str) -> list[str]:
    lowered = text.lower().replace("\u2019", "'")
    return _WORD.findall(lowered)


def _says_complement(word: str, other: AbstractSet[str]) -> bool:
    """Whether ``other`` holds the opposite of ``word``: a listed complement or a negating prefix ("invalid")."""
    if _COMPLEMENTS.get(word, frozenset()) & other:
        return True
    return any(prefix + word in other for prefix in _NEGATING_PREFIXES)


def _negated(text: str, words: list[str], other: AbstractSet[str] = frozenset()) -> bool:
    """Whether the text says "not", compared with ``other`` (the other text's words).

    A negator does not count before a verb of failing ("don't forget to" / "remember to"), nor before a word
    whose opposite the other text uses ("not mandatory" / "optional"), unless the other text has that same
    word ("doesn't fail" / "fails" stays a negation). "with X removed" counts as "without X".
    """
    body = words[1:] if words[:1] == ["no"] and _ANSWER_NO.match(text) else words
    for i, w in enumerate(body):
        # "whether ... or not" asks both ways; it negates nothing.
        if w == "not" and i > 0 and body[i - 1] == "or":
            continue
        if _explicit_negator(w):
            after = [x for x in body[i + 1 : i + 4] if x not in _ARTICLES and x != "to"][:1]
            if (
                after
                and after[0] not in other
                and (after[0] in _NEGATIVE_VERBS or _says_complement(after[0], other))
            ):
                continue
            return True
        if w in _IMPLICIT_NEGATIONS:
            if w == "except" and i > 0 and body[i - 1] == "try":
                continue  # Python's try/except
            return True
        if w == "with" and _REMOVED.intersection(body[i + 1 : i + 6]):
            return True
    return False


def _numbers(words: list[str]) -> frozenset[str]:
    found = set()
    for w in words:
        if _NUMBER.match(w):
            # "3.0" and "3" say the same number; "1,000" was split by the tokenizer and stays two parts.
            found.add(re.sub(r"(?:\.0+)+$", "", w) or "0")
    return frozenset(found)


def _antonym_sides(words: list[str]) -> dict[int, tuple[bool, bool]]:
    """For each antonym pair the text touches: (says the first side, says the second side)."""
    found: set[tuple[int, int]] = set()
    for w in set(words):
        found.update(_ANTONYM_WORDS.get(w, ()))
    if _ANTONYM_PHRASES:
        text = " ".join(words)
        found.update((pair, side) for phrase, pair, side in _ANTONYM_PHRASES if phrase in text)
    return {pair: ((pair, 0) in found, (pair, 1) in found) for pair, _ in found}


def _antonym(a: list[str], b: list[str]) -> str | None:
    """ "conflict" when one text says "enable" where the other says "disable"; "swapped" when the opposite
    words come with their operands traded ("A uses more than B" / "B uses less than A": the same claim)."""
    sides_a, sides_b = _antonym_sides(a), _antonym_sides(b)
    found = None
    for pair in sides_a.keys() & sides_b.keys():
        (a_left, a_right), (b_left, b_right) = sides_a[pair], sides_b[pair]
        # One side says "enable" and not "disable", the other the reverse.
        if (a_left and not a_right and b_right and not b_left) or (
            a_right and not a_left and b_left and not b_right
        ):
            forms = _ANTONYMS[pair][0] | _ANTONYMS[pair][1]
            if _negates(a, forms) != _negates(b, forms):
                continue  # "not valid" / "invalid": the negation turns it back
            if pair not in _COMPARATIVES or not _operands_traded(a, b, _ANTONYMS[pair]):
                return "conflict"
            found = "swapped"
    return found


def _negates(words: list[str], forms: frozenset[str]) -> bool:
    """Whether a negator stands just before one of ``forms`` ("is not valid", "isn't a valid")."""
    for i, w in enumerate(words):
        if w in forms:
            before = [x for x in words[max(0, i - 3) : i] if x not in _ARTICLES]
            if before and _explicit_negator(before[-1]):
                return True
    return False


def _operands_traded(a: list[str], b: list[str], sides: tuple[frozenset[str], frozenset[str]]) -> bool:
    """Whether words on one side of the comparative in ``a`` are on the other side of it in ``b``, both ways."""
    words = sides[0] | sides[1]
    ia = next((i for i, w in enumerate(a) if w in words), None)
    ib = next((i for i, w in enumerate(b) if w in words), None)
    if ia is None or ib is None:
        return False
    return _crossed(_content(a[:ia]), _content(a[ia + 1 :]), _content(b[:ib]), _content(b[ib + 1 :]))


def _crossed(before_a: list[str], after_a: list[str], before_b: list[str], after_b: list[str]) -> bool:
    """Whether some words move from before a pivot to after it between two texts, and others the other way."""
    ba, aa, bb, ab = set(before_a), set(after_a), set(before_b), set(after_b)
    return bool(((ba & ab) - aa - bb) and ((aa & bb) - ba - ab))


def _overlap(a: list[str], b: list[str]) -> float:
    """Jaccard of the content words, negators left out: how much the two say the same thing in the same words.

    Negation is only judged between close wordings; a rephrasing ("in the absence of" for "without") says
    the same with other words, and the embedding already weighs it.
    """
    sa = {w for w in _content(a) if not _negator(w)}
    sb = {w for w in _content(b) if not _negator(w)}
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


def _negator(word: str) -> bool:
    return _explicit_negator(word) or word in _IMPLICIT_NEGATIONS


def _explicit_negator(word: str) -> bool:
    return word in _NEGATIONS or word.endswith("n't")


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
        if _crossed(a[:ia], a[ia + 1 :], b[:ib], b[ib + 1 :]):
            return True
    return False


def guard_conflict(query: str, cached: str, guards: tuple[str, ...] = GUARDS) -> str | None:
    """The name of the first guard that sees opposite meanings in the two texts, or None.

    negation: one says "not"/"never"/"doesn't"/"without" and the other does not; number: each mentions a number
    the other does not; antonym: one says "enable" where the other says "disable"; reversal: swapped operands.
    Rephrasings that keep the meaning pass: "don't forget to" / "remember to", "not mandatory" / "optional",
    "not valid" / "invalid", "with X removed" / "without X", "A needs more than B" / "B needs less than A".
    """
    if query == cached:
        return None
    qa, ca = _words(query), _words(cached)
    if (
        "negation" in guards
        and _negated(query, qa, set(ca)) != _negated(cached, ca, set(qa))
        and _overlap(qa, ca) >= 0.5
    ):
        return "negation"
    if "number" in guards:
        nq, nc = _numbers(qa), _numbers(ca)
        # A number swapped for another ("Windows 10" / "Windows 11"); one side quoting fewer of the same
        # numbers (a shortened code listing) changes no number.
        if nq - nc and nc - nq:
            return "number"
    antonym = _antonym(qa, ca) if "antonym" in guards or "reversal" in guards else None
    if "antonym" in guards and antonym == "conflict":
        return "antonym"
    # Operands traded along with a comparative ("more ... than" / "less ... than") are not a reversal.
    if "reversal" in guards and antonym != "swapped" and _reversed(qa, ca):
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
