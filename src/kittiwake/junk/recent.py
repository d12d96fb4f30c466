"""Recent verdicts that do not depend on a message's content, kept for a second.

A sender with a clear good history is accepted on that history
(:mod:`kittiwake.junk.reputation`): the verdict is the same for each of its
messages until the counts behind it change. A busy sender's messages come
many per second, each with a worker-thread trip and a few queries of the
account's junk database under its read lock: on the MX benchmark at 20
sessions, 6.5-8 ms of waiting before each message could be stored (a 3 ms trip
into the thread, 4 ms deciding), where the decision itself is a few dictionary
lookups once known.

So an accepting verdict that does not depend on the message's content (one on
the sender's history, or "untrained": an account too little trained to judge
words; never a junk one: those keep their side effects, e.g. the copy in
Rejects; never one with a first-time pause) is kept for :data:`SECONDS` per account and
sender identities (the IP, the verified domains, the address: the whole
:class:`SenderIdentities`), with the settings it was decided under, and a
message with the same identities gets it at once, with its own Message-ID.
Training (a user marking mail as junk or not, a full retrain) forgets the
account's verdicts at once; new history from deliveries shows within the
second.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from kittiwake.config.domains import JunkConfig
from kittiwake.junk.model import Action, JunkVerdict, Reason, SenderIdentities

SECONDS = 1.0
# At most this many senders are remembered, of all accounts (the oldest go first).
MAX_ENTRIES = 4096
# The reasons of verdicts that do not depend on the message's content: the sender's
# history, or an account not trained enough for the words to count.
KEPT_REASONS = frozenset({Reason.SENT_TO_ADDRESS, Reason.DMARC_DOMAIN, Reason.ADDRESS,
                          Reason.VERIFIED_DOMAIN, Reason.IP, Reason.NETWORK,
                          Reason.UNTRAINED})

Key = tuple[str, SenderIdentities]


class RecentVerdicts:
    """Accepting content-independent verdicts by account and sender identities."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        # In the order they were decided, so the first is the oldest (one lifetime).
        self._kept: dict[Key, tuple[float, JunkConfig, JunkVerdict]] = {}
        self.hits = 0

    def __len__(self) -> int:
        return len(self._kept)

    def get(self, account: str, settings: JunkConfig, identities: SenderIdentities,
            message_id: str) -> JunkVerdict | None:
        """The kept verdict for this sender, for a message with ``message_id``; None
        when there is none still fresh under these settings."""
        key = (account, identities)
        entry = self._kept.get(key)
        if entry is None:
            return None
        expires, decided_under, verdict = entry
        if expires <= self.clock() or decided_under is not settings:
            del self._kept[key]
            return None
        self.hits += 1
        return replace(verdict, message_id=message_id)

    def remember(self, account: str, settings: JunkConfig, verdict: JunkVerdict) -> None:
        """Keep ``verdict`` if it is an acceptance that does not depend on the words."""
        identities = verdict.identities
        if identities is None or verdict.action is not Action.ACCEPT or \
                verdict.reason not in KEPT_REASONS or verdict.delay or verdict.first_time:
            return
        key = (account, identities)
        self._kept.pop(key, None)  # (to the end: the newest)
        self._kept[key] = (self.clock() + SECONDS, settings, verdict)
        while len(self._kept) > MAX_ENTRIES:
            del self._kept[next(iter(self._kept))]

    def forget(self, account: str) -> None:
        """The account's counts changed by training: decide afresh."""
        for key in [k for k in self._kept if k[0] == account]:
            del self._kept[key]
