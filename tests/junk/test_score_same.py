"""The content score equals that of the code before it skipped unseen words.

The reference is :func:`kittiwake.junk.bayes.score` as it was: every distinct word
through :func:`word_probability`, an unseen one as ``WordCounts()``. Same floats,
same deciding words in the same order, on random training counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from hypothesis import given, settings
from hypothesis import strategies as st

from kittiwake.junk import bayes
from kittiwake.junk.bayes import Score, WordCounts, word_probability


def old_score(words: Iterable[str], counts: Mapping[str, WordCounts], ham_total: int,
              junk_total: int) -> Score:
    probs = []
    for word in dict.fromkeys(words):
        p = word_probability(counts.get(word, WordCounts()), ham_total, junk_total)
        if abs(p - 0.5) >= bayes.MIN_DEVIATION:
            probs.append((word, p))
    probs.sort(key=lambda wp: abs(wp[1] - 0.5), reverse=True)
    deciding = probs[:bayes.MAX_DECIDING_WORDS]
    if not deciding:
        return Score(0.5, ())
    n = len(deciding)
    ln_ham = sum(math.log(1.0 - p) for _, p in deciding)
    ln_junk = sum(math.log(p) for _, p in deciding)
    junkiness = 1.0 - bayes._chi2_q(-2.0 * ln_ham, 2 * n)
    hamminess = 1.0 - bayes._chi2_q(-2.0 * ln_junk, 2 * n)
    return Score((1.0 + junkiness - hamminess) / 2.0, tuple(deciding))


VOCABULARY = [f"w{i}" for i in range(400)]


@settings(max_examples=300, deadline=None)
@given(words=st.lists(st.sampled_from(VOCABULARY), max_size=300),
       counts=st.dictionaries(st.sampled_from(VOCABULARY),
                              st.tuples(st.integers(0, 30), st.integers(0, 30)), max_size=300),
       ham_total=st.integers(0, 30), junk_total=st.integers(0, 30))
def test_the_score_is_the_same(words: list[str], counts: dict[str, tuple[int, int]],
                               ham_total: int, junk_total: int) -> None:
    known = {w: WordCounts(*c) for w, c in counts.items()}
    assert bayes.score(words, known, ham_total, junk_total) == old_score(
        words, known, ham_total, junk_total)
