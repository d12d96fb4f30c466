"""A naive Bayesian spam score over message words (pure: counts in, probability out).

Each word's spamminess is the share of junk messages containing it, against
the share of ham messages containing it (Graham, "A Plan for Spam", 2002),
pulled towards 0.5 for words seen rarely (Robinson's "degree of belief":
``f(w) = (s*x + n*p(w)) / (s + n)``, x = 0.5, s = 1). The most telling words
(farthest from 0.5) are combined with Fisher's method (Robinson, "A
Statistical Approach to the Spam Problem", 2003): two chi-square tests, one
for "the words look like junk" and one for "they look like ham", give a
score from 0 (ham) to 1 (junk), 0.5 meaning the words disagree or say nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

# Robinson's constants: the prior for an unknown word and its strength.
UNKNOWN_WORD = 0.5
BELIEF_STRENGTH = 1.0
# Words closer to 0.5 than this say nothing and are left out.
MIN_DEVIATION = 0.1
# At most this many words (the most telling ones) decide.
MAX_DECIDING_WORDS = 150
# Keep word probabilities off 0 and 1 so that one word never decides alone.
CLAMP = 0.01


class WordCounts(NamedTuple):
    """How many ham and junk messages of the training contained a word (a named
    tuple: a message's words are many, and each of their counts is one of these)."""

    ham: int = 0
    junk: int = 0


@dataclass(frozen=True)
class Score:
    """The score of one message and the words that decided it (most telling first)."""

    probability: float
    words: tuple[tuple[str, float], ...]


def word_probability(counts: WordCounts, ham_total: int, junk_total: int) -> float:
    """Robinson's f(w): the probability that a message with this word is junk."""
    n = counts.ham + counts.junk
    if n == 0 or ham_total == 0 or junk_total == 0:
        return UNKNOWN_WORD
    junk_share = min(1.0, counts.junk / junk_total)
    ham_share = min(1.0, counts.ham / ham_total)
    p = junk_share / (junk_share + ham_share)
    f = (BELIEF_STRENGTH * UNKNOWN_WORD + n * p) / (BELIEF_STRENGTH + n)
    return min(1.0 - CLAMP, max(CLAMP, f))


def _chi2_q(chi: float, degrees: int) -> float:
    """P(X >= chi) for a chi-square distribution with even ``degrees`` (series form)."""
    m = chi / 2.0
    term = total = math.exp(-m)
    for i in range(1, degrees // 2):
        term *= m / i
        total += term
    return min(total, 1.0)


def score(words: Iterable[str], counts: Mapping[str, WordCounts], ham_total: int,
          junk_total: int) -> Score:
    """Fisher-combined junk probability of a message's distinct words."""
    probs = []
    for word in dict.fromkeys(words):
        known = counts.get(word)
        if known is None or not (known.ham or known.junk):
            continue  # never seen: UNKNOWN_WORD, which says nothing (MIN_DEVIATION)
        p = word_probability(known, ham_total, junk_total)
        if abs(p - 0.5) >= MIN_DEVIATION:
            probs.append((word, p))
    probs.sort(key=lambda wp: abs(wp[1] - 0.5), reverse=True)
    deciding = probs[:MAX_DECIDING_WORDS]
    if not deciding:
        return Score(0.5, ())
    n = len(deciding)
    ln_ham = sum(math.log(1.0 - p) for _, p in deciding)
    ln_junk = sum(math.log(p) for _, p in deciding)
    # H near 1: the words are unlike junk-words chosen at random; S likewise for ham.
    junkiness = 1.0 - _chi2_q(-2.0 * ln_ham, 2 * n)
    hamminess = 1.0 - _chi2_q(-2.0 * ln_junk, 2 * n)
    return Score((1.0 + junkiness - hamminess) / 2.0, tuple(deciding))
