"""The junk filter of every account: decide on incoming mail, learn from the user.

    junk = JunkFilter(store, lambda: domains, resolver)
    await junk.start()                      # follows every account's changes
    verdict = await junk.classify("alice", identities, data)
    ... store verdict.header() + data in verdict.mailbox or the destination's ...
    await junk.record_delivery("alice", verdict, delivered)

Invariants:

- Reputation comes first (:mod:`kittiwake.junk.reputation`): a known good
  sender is accepted without looking at the words, a known bad one is filed
  as junk or rejected. The content classifier only judges senders without a
  clear history.
- SQLite work, message parsing and training run in worker threads, never on
  the event loop; each account's changes are handled in order by one task.
- A change of a message's class (moved into or out of Junk, ``$Junk`` /
  ``$NotJunk`` set by any client, answered, rescued from Rejects) untrains
  its old contribution to the word counts before training the new one, so
  the counts always equal the training set the user's mailboxes describe.
- Errors in learning are reported (``kittiwake_panic_total{origin="junk"}``)
  and never reach delivery; an error while classifying accepts the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable, Container, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import TypeVar

from kittiwake import dnsbl, log
from kittiwake.config.domains import DomainsConfig, JunkConfig
from kittiwake.cpupool import INLINE, CpuRunner
from kittiwake.dns import Resolver
from kittiwake.junk import metrics as junk_metrics
from kittiwake.junk import reputation
from kittiwake.junk.bayes import score
from kittiwake.junk.database import JunkDatabase, Retrain, Stats
from kittiwake.junk.history import Class, MailboxKind, MailboxNames
from kittiwake.junk.model import Action, JunkVerdict, Reason, Reject, SenderIdentities
from kittiwake.junk.recent import RecentVerdicts
from kittiwake.junk.tokens import message_words
from kittiwake.message import parse_addresses, parse_header_section, parse_msgids
from kittiwake.metrics import guard, panic
from kittiwake.store import (
    AccountStore,
    Change,
    Delivered,
    Flags,
    MailboxNotFound,
    Store,
    StoreError,
    Subscription,
)
from kittiwake.store.changes import AccountFollowers
from kittiwake.store.model import Message
from kittiwake.store.store import Account
from kittiwake.tasks import cancel_and_wait

logger = log.get_logger("junk")

DAY_MS = 86_400_000
REJECTS_SWEEP_SECONDS = 3600.0
REJECTS_FIRST_SWEEP_SECONDS = 60.0
DNSBL_CACHE_SECONDS = 300.0
# A follower that hears a change waits this long for more before learning, so that a
# burst (a client's APPENDs, one after the other; many STOREs) is learnt from in one
# go: one store query and one junk transaction (one fsync) for the lot.
LEARN_DELAY = 0.05
# Deliveries remembered for the learner to pass over (per account): far more than
# arrive between a delivery and its change being learnt from.
RECORDED_KEPT = 10_000
# ... and for this long: an entry the learner never met (it learnt from the change
# before record_delivery was called) must not match a later message of a mailbox
# made again under the same name, whose UIDs start again.
RECORDED_SECONDS = 60.0
TRAIN_CHUNK = 50  # retrained messages per worker-thread call (and per transaction)
CLOSE_DRAIN_SECONDS = 5.0  # close() waits this long for what was heard to be learnt

Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")


@dataclass(frozen=True)
class CheckResult:
    """``kittiwake junk check``: the content score of a message and its deciding words."""

    probability: float | None  # None while the training is too small
    words: tuple[tuple[str, float], ...]
    ham_messages: int
    junk_messages: int
    verdict: Action


def names_of(settings: JunkConfig) -> MailboxNames:
    return MailboxNames(junk=settings.junk_mailbox, rejects=settings.rejects_mailbox)


def reject_reply(settings: JunkConfig) -> Reject:
    """RFC 3463 §3.8: X.7.1, delivery not authorized (message refused)."""
    if settings.reject_code == 451:
        return Reject(451, "4.7.1", "message looks like junk, try again later")
    return Reject(550, "5.7.1", "message refused as junk")


def rejects(settings: JunkConfig, probability: float) -> bool:
    """A content score refused in SMTP (a reject_threshold of 1.0 never rejects)."""
    return settings.reject_threshold < 1.0 and probability >= settings.reject_threshold


def _whole_flags(change: Change) -> bool:
    return len(change.flags) == len(change.uids)


def merge_added(changes: list[Change]) -> list[Change]:
    """Consecutive "added" changes of one mailbox as one (their UIDs together), and
    consecutive "flags" changes of one mailbox as one (each UID with its flags, in
    order: a UID named twice ends with its later flags), so that a burst is learnt
    from in one transaction; the order of the rest is kept."""
    out: list[Change] = []
    for change in changes:
        last = out[-1] if out else None
        same = last is not None and change.kind == last.kind \
            and change.mailbox_id == last.mailbox_id and change.mailbox == last.mailbox
        if same and change.kind == "added":
            assert last is not None
            out[-1] = dataclasses.replace(last, uids=last.uids + change.uids,
                                          flags=last.flags + change.flags
                                          if last.flags and change.flags else (),
                                          modseq=change.modseq)
        elif same and change.kind == "flags" and _whole_flags(change) \
                and last is not None and _whole_flags(last):
            out[-1] = dataclasses.replace(last, uids=last.uids + change.uids,
                                          flags=last.flags + change.flags,
                                          modseq=max(last.modseq, change.modseq))
        else:
            out.append(change)
    return out


class JunkFilter:
    """Per-account junk decisions and learning; one per server process."""

    def __init__(self, store: Store, domains: Callable[[], DomainsConfig],
                 resolver: Resolver | None = None, sleep: Sleep = asyncio.sleep,
                 clock: Callable[[], float] = time.time, cpu: CpuRunner = INLINE) -> None:
        self.store = store
        # Where a message's words are computed (kittiwake.cpupool): pure-Python work
        # of milliseconds per message, in a worker process in the server.
        self.cpu = cpu
        self.domains = domains
        self.resolver = resolver
        self.sleep = sleep
        self.clock = clock
        self._dbs: dict[str, JunkDatabase] = {}
        self._open_lock = asyncio.Lock()
        self._followers = AccountFollowers(store.changes, self._follow)
        self._sweeper: asyncio.Task[None] | None = None
        self._dnsbl_cache: dict[tuple[str, str], tuple[float, bool]] = {}
        self._learning: dict[str, asyncio.Lock] = {}  # one learner per account at a time
        self._busy = 0
        # Senders of delivered messages, per account, waiting for their writer
        # (record_delivery): written in batches, one transaction each.
        self._to_record: dict[str, list[tuple[int, str, int, str, SenderIdentities]]] = {}
        self._recorders: dict[str, asyncio.Task[None]] = {}
        # (mailbox, uid) of the messages record_delivery took, per account, with when,
        # for the learner to pass over (see learn); insertion-ordered, bounded.
        self._recorded: dict[str, dict[tuple[str, int], float]] = {}
        # Message-IDs of messages kept in Rejects whose history rows are not written
        # yet (queued for, or in, record_delivery's writer), per account, with how
        # many: a retry of one of them is already kept though in_rejects cannot say.
        self._rejects_pending: dict[str, dict[str, int]] = {}
        # Accepting verdicts of the last second that did not depend on the words
        # (kittiwake.junk.recent).
        self.recent = RecentVerdicts()

    # --- settings and databases ------------------------------------------------

    def settings(self, account: str) -> JunkConfig | None:
        """The account's junk settings, or None when it has none or they are off."""
        conf = self.domains().accounts.get(account)
        if conf is None or not conf.junk.enabled:
            return None
        return conf.junk

    async def database(self, account: str) -> JunkDatabase:
        db = self._dbs.get(account)
        if db is not None:
            return db
        async with self._open_lock:
            db = self._dbs.get(account)
            if db is None:
                settings = self.settings(account) or JunkConfig()
                path = self.store.feature_path(account, "junk")
                db = await asyncio.to_thread(JunkDatabase, path, names_of(settings))
                self._dbs[account] = db
            return db

    async def _account(self, name: str) -> Account:
        conf = self.domains().accounts.get(name)
        return await self.store.account(name, conf.quota_bytes if conf else 0,
                                        conf.mailboxes if conf else ())

    # --- deciding ----------------------------------------------------------------

    async def classify(self, account: str, identities: SenderIdentities,
                       message: bytes | Callable[[], bytes],
                       message_id: str | None = None) -> JunkVerdict:
        """The verdict on one incoming message for ``account``; never raises.

        ``message``: its bytes, or a function returning them, called (in a worker
        thread, so it may read a file) only when the content classifier judges
        the words: a sender with a clear history, or an account whose training
        is still too small, costs no read of the text.
        ``message_id``: its Message-ID field's value when the caller parsed the
        header section already (parse once), else it is read from ``message``."""
        settings = self.settings(account)
        if settings is None:
            return JunkVerdict(Action.ACCEPT, Reason.DISABLED, identities=identities)
        started = time.monotonic()
        try:
            listed = await self._dnsbl(settings, identities)
            if listed:
                identities = replace(identities, dnsbl_listed=tuple(
                    dict.fromkeys((*identities.dnsbl_listed, *listed))))
            remembered = None
            if message_id is not None:  # a sender decided a moment ago (junk.recent)
                ids = parse_msgids(message_id)
                remembered = self.recent.get(account, settings, identities,
                                             ids[0] if ids else "")
            if remembered is not None:
                verdict = remembered
            else:
                db = await self.database(account)
                since = int(self.clock() * 1000) - settings.history_days * DAY_MS
                verdict = await asyncio.to_thread(self._decide, db, settings, identities,
                                                  message, since, message_id,
                                                  self._rejects_pending.get(account, {}))
                self.recent.remember(account, settings, verdict)
        except Exception as exc:
            panic("junk", exc, msg="junk classification failed; accepting", account=account)
            verdict = JunkVerdict(Action.ACCEPT, Reason.UNTRAINED, identities=identities,
                                  evidence=(("error", "classification-failed"),))
        junk_metrics.CLASSIFY_SECONDS.observe(time.monotonic() - started)
        junk_metrics.VERDICTS.labels(action=str(verdict.action), reason=str(verdict.reason)).inc()
        junk_metrics.VERDICTS_TODAY.add(str(verdict.action))
        fields: dict[str, str | None] = {"ip": identities.ip,
                                         "sender": identities.address or None}
        fields.update(verdict.fields())  # the evidence (ip=, address=, ...) has the last word
        logger.info("junk verdict", account=account, **fields)
        return verdict

    def _decide(self, db: JunkDatabase, settings: JunkConfig, identities: SenderIdentities,
                message: bytes | Callable[[], bytes], since: int,
                message_id: str | None = None, kept: Container[str] = ()) -> JunkVerdict:
        """In a worker thread: history first, then block lists, then the words.

        ``kept``: Message-IDs in Rejects whose history is still being written."""
        if message_id is None:
            message = _bytes_of(message)
            message_id = parse_header_section(message)[0].get("message-id")
        ids = parse_msgids(message_id)
        msgid = ids[0] if ids else ""
        sent_to = identities.address if identities.address and db.sent_to(
            identities.address) else ""
        # The identities' tallies are read one at a time, as decide asks for them: the
        # first clear one decides, and those after it would change nothing (a deciding
        # identity has messages before, so the sender is not a first-time one either).
        signals: list[reputation.Signal] = []
        decision = reputation.decide(sent_to, _kept(self._signals(db, identities, since),
                                                    signals))
        # In an account with (almost) no history every sender is new: no pause then.
        first = decision is None and not sent_to and reputation.first_time(signals) \
            and db.knows_at_least(settings.min_training_messages)
        base = JunkVerdict(Action.ACCEPT, Reason.UNTRAINED, identities=identities,
                           message_id=msgid, first_time=first,
                           delay=settings.first_time_delay_seconds if first else 0.0)
        if decision is not None:
            evidence = ((decision.signal.key, decision.signal.value),)
            if decision.cls is Class.HAM:
                return replace(base, reason=decision.signal.reason, evidence=evidence)
            return self._junk(db, settings, replace(base, reason=decision.signal.reason,
                                                    evidence=evidence),
                              reject=settings.known_junk == "reject", kept=kept)
        if identities.dnsbl_listed:
            return self._junk(db, settings, replace(
                base, reason=Reason.DNSBL, evidence=(("zone", identities.dnsbl_listed[0]),)),
                reject=False)
        ham_total, junk_total = db.totals()
        if min(ham_total, junk_total) < settings.min_training_messages:
            return base
        words = self.cpu.call(message_words, _bytes_of(message))
        result = score(words, db.counts(words), ham_total, junk_total)
        verdict = replace(base, reason=Reason.CONTENT, score=result.probability,
                          words=result.words[:10])
        if rejects(settings, result.probability):
            return self._junk(db, settings, verdict, reject=True, kept=kept)
        if result.probability >= settings.junk_threshold:
            return self._junk(db, settings, verdict, reject=False)
        return verdict

    @staticmethod
    def _signals(db: JunkDatabase, who: SenderIdentities, since: int
                 ) -> Iterator[reputation.Signal]:
        """The history of each identity the sender has, the most specific first
        (:mod:`kittiwake.junk.reputation`), each read when asked for."""
        if who.address:
            yield reputation.Signal(Reason.ADDRESS, "address", who.address,
                                    db.tally("address", who.address, since))
        if who.dmarc_domain:
            yield reputation.Signal(Reason.DMARC_DOMAIN, "domain", who.dmarc_domain,
                                    db.tally("dmarc_domain", who.dmarc_domain, since))
        if who.verified_domains:
            yield reputation.Signal(
                Reason.VERIFIED_DOMAIN, "domain", ",".join(sorted(who.verified_domains)),
                db.tally_verified(who.verified_domains, since))
        if who.ip:
            yield reputation.Signal(Reason.IP, "ip", who.ip, db.tally("ip", who.ip, since))
        network = who.network
        if network:
            yield reputation.Signal(Reason.NETWORK, "net", network,
                                    db.tally("net", network, since))

    @staticmethod
    def _junk(db: JunkDatabase, settings: JunkConfig, verdict: JunkVerdict,
              reject: bool, kept: Container[str] = ()) -> JunkVerdict:
        if not reject:
            return replace(verdict, action=Action.JUNK, mailbox=settings.junk_mailbox)
        msgid = verdict.message_id
        return replace(verdict, action=Action.REJECT, mailbox=settings.rejects_mailbox,
                       reject=reject_reply(settings),
                       already_kept=bool(msgid) and (msgid in kept or db.in_rejects(msgid)))

    async def _dnsbl(self, settings: JunkConfig, who: SenderIdentities) -> list[str]:
        """Zones of the account's junk block lists that list the connecting IP (RFC 5782)."""
        if not settings.dnsbl_zones or self.resolver is None or not who.ip:
            return []
        now = time.monotonic()
        listed: list[str] = []
        todo: list[str] = []
        for zone in settings.dnsbl_zones:
            cached = self._dnsbl_cache.get((who.ip, zone))
            if cached is not None and now - cached[0] < DNSBL_CACHE_SECONDS:
                if cached[1]:
                    listed.append(zone)
            else:
                todo.append(zone)
        for result in await dnsbl.check_all(self.resolver, who.ip, todo) if todo else []:
            if result.status is dnsbl.Status.TEMPERROR:
                continue
            hit = result.status is dnsbl.Status.FAIL
            self._dnsbl_cache[(who.ip, result.zone)] = (now, hit)
            if hit:
                listed.append(result.zone)
        return listed

    async def pause(self, seconds: float) -> None:
        """The first-time sender's pause before the DATA reply."""
        if seconds > 0:
            await self.sleep(seconds)

    async def record_delivery(self, account: str, verdict: JunkVerdict,
                              delivered: Delivered) -> None:
        """Remember who sent a stored message (its verified identities); never raises.

        Not on the acknowledgement path: the sender is queued and the account's
        writer puts all that queued meanwhile into one transaction (one fsync for
        many deliveries, where one each capped an account's intake at the disk's
        fsync rate). The history is the filter's own derived data: a crash before
        the write loses only the reputation of those few messages.
        """
        if verdict.reason is Reason.DISABLED or verdict.identities is None:
            return
        self._to_record.setdefault(account, []).append(
            (delivered.message_id, delivered.mailbox, delivered.uid, verdict.message_id,
             verdict.identities))
        self._keep_pending(account, verdict.message_id, delivered.mailbox)
        recorded = self._recorded.setdefault(account, {})
        recorded[(delivered.mailbox, delivered.uid)] = time.monotonic()
        if len(recorded) > RECORDED_KEPT:  # never heard of by the learner: forget the oldest
            del recorded[next(iter(recorded))]
        if account not in self._recorders:
            self._recorders[account] = asyncio.get_running_loop().create_task(
                self._record_queued(account))

    async def _record_queued(self, account: str) -> None:
        try:
            while items := self._to_record.pop(account, []):
                try:
                    db = await self.database(account)
                    async with self._lock(account):  # ordered with what learn() writes
                        retrains = await asyncio.to_thread(db.record_deliveries, items)
                        await self._retrain(account, db, retrains)
                except Exception as exc:
                    panic("junk", exc, msg="recording the sender failed", account=account,
                          messages=len(items))
                finally:  # written (in_rejects knows them now), or never will be
                    self._drop_pending(account, items)
        finally:
            self._recorders.pop(account, None)

    def _rejects_name(self, account: str) -> str | None:
        settings = self.settings(account)
        return settings.rejects_mailbox.lower() if settings is not None else None

    def _keep_pending(self, account: str, msgid: str, mailbox: str) -> None:
        """Count a message delivered into Rejects until its history row is written
        (:meth:`_drop_pending`), for :meth:`JunkDatabase.in_rejects` cannot see it yet."""
        if msgid and mailbox.lower() == self._rejects_name(account):
            pending = self._rejects_pending.setdefault(account, {})
            pending[msgid] = pending.get(msgid, 0) + 1

    def _drop_pending(self, account: str,
                      items: list[tuple[int, str, int, str, SenderIdentities]]) -> None:
        pending = self._rejects_pending.get(account)
        if not pending:
            return
        rejects_name = self._rejects_name(account)
        for _id, mailbox, _uid, msgid, _who in items:
            if msgid not in pending or mailbox.lower() != rejects_name:
                continue
            if pending[msgid] > 1:
                pending[msgid] -= 1
            else:
                del pending[msgid]

    async def recorded(self) -> None:
        """Wait until every queued sender is written (tests, close)."""
        while self._recorders:
            await asyncio.gather(*list(self._recorders.values()), return_exceptions=True)

    async def record_sent(self, account: str, recipients: list[str], message: bytes) -> None:
        """Mail the account submitted: its recipients and the messages it answers."""
        if self.settings(account) is None:
            return
        try:
            db = await self.database(account)
            retrains = await asyncio.to_thread(self._sent, db, recipients, message)
            await self._retrain(account, db, retrains)
        except Exception as exc:
            panic("junk", exc, msg="recording sent mail failed", account=account)

    @staticmethod
    def _sent(db: JunkDatabase, recipients: list[str], message: bytes) -> list[Retrain]:
        headers, _ = parse_header_section(message)
        addresses = list(recipients)
        for name in ("to", "cc", "bcc"):
            for value in headers.get_all(name):
                addresses += [a.addr for a in parse_addresses(value) if a.domain]
        refs = parse_msgids(headers.get("in-reply-to")) + parse_msgids(headers.get("references"))
        return db.record_sent(addresses, refs)

    # --- learning ------------------------------------------------------------------

    async def start(self) -> None:
        """Follow the changes of every account with junk filtering on; sweep Rejects."""
        self.reload(self.domains())
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_rejects())

    def reload(self, domains: DomainsConfig) -> None:
        """Follow accounts added by a domains.conf reload (and stop following removed ones)."""
        self._followers.follow_only(
            name for name, conf in domains.accounts.items() if conf.junk.enabled)
        for name, db in self._dbs.items():
            conf = domains.accounts.get(name)
            if conf is not None:
                db.names = names_of(conf.junk)

    async def _follow(self, account: str, sub: Subscription) -> None:
        try:
            while True:
                first = await sub.get()
                self._busy += 1
                try:
                    if LEARN_DELAY > 0:
                        await asyncio.sleep(LEARN_DELAY)  # a burst comes together
                    for change in merge_added([first, *sub.pending()]):
                        try:
                            with guard("junk", "learning from a change failed",
                                       account=account):
                                async with self._lock(account):
                                    await self.learn(account, change)
                        except MailboxNotFound:
                            pass  # the mailbox went away before we looked: nothing to learn
                finally:
                    self._busy -= 1
        finally:
            sub.close()

    def _lock(self, account: str) -> asyncio.Lock:
        return self._learning.setdefault(account, asyncio.Lock())

    async def settled(self, timeout: float = 10.0) -> None:
        """Wait until every change published so far has been learnt from (tests, CLI)."""
        deadline = time.monotonic() + timeout
        await asyncio.wait_for(self.recorded(), timeout)
        while self._busy or self._followers.queued():
            if time.monotonic() > deadline:
                raise TimeoutError("junk filter still learning")
            await asyncio.sleep(0.005)

    async def learn(self, account: str, change: Change) -> None:
        """Bring the history and the word counts up to date with one store change.

        The store's rows are read and the history written in one worker-thread call
        (the account's store methods are thread-safe), however many messages the
        change names."""
        db = await self.database(account)
        kind = db.names.kind(change.mailbox)
        if change.kind == "added" and change.uids:
            core = (await self._account(account)).core
            mailbox, uids = change.mailbox, list(change.uids)
            recorded = self._recorded.get(account)
            if recorded and kind is not MailboxKind.SENT:
                uids = _not_recorded(recorded, mailbox, uids)
                if not uids:
                    return

            def locate() -> tuple[list[Message], list[Retrain]]:
                messages = core.messages(mailbox, 0, uids)
                located = db.located_many([
                    (m.id, mailbox, m.uid, m.flags.system, m.flags.keywords, m.message_id,
                     m.received) for m in messages])
                return messages, [r for r in located if r is not None]

            messages, retrains = await asyncio.to_thread(locate)
            if kind is MailboxKind.SENT:
                for m in messages:
                    data = await asyncio.to_thread(core.read, m.id)
                    retrains += await asyncio.to_thread(self._sent, db, [], data)
            await self._retrain(account, db, retrains)
        elif change.kind == "flags" and change.uids:
            items = [(uid, f.system, f.keywords) for uid, f in
                     zip(change.uids, change.flags or (Flags(),) * len(change.uids),
                         strict=False)]
            core = (await self._account(account)).core
            mailbox = change.mailbox

            def changed() -> list[Retrain]:
                retrains, unknown = db.flags_changed(mailbox, items)
                if unknown:
                    located = db.located_many([
                        (m.id, mailbox, m.uid, m.flags.system, m.flags.keywords,
                         m.message_id, m.received) for m in core.messages(mailbox, 0, unknown)])
                    retrains += [r for r in located if r is not None]
                return retrains

            await self._retrain(account, db, await asyncio.to_thread(changed))
        elif change.kind == "expunged" and change.uids:
            await self._retrain(account, db, await asyncio.to_thread(
                db.expunged, change.mailbox, change.uids))
        elif change.kind == "mailbox-renamed" and change.old_name:
            await asyncio.to_thread(db.renamed, change.old_name, change.mailbox)

    async def _retrain(self, account: str, db: JunkDatabase, retrains: list[Retrain]) -> None:
        """Train each retrain's new class in place of its old one: :data:`TRAIN_CHUNK`
        messages per worker-thread call, each chunk one transaction."""
        if not retrains:
            return
        self.recent.forget(account)  # its counts change now
        core = (await self._account(account)).core
        for i in range(0, len(retrains), TRAIN_CHUNK):
            chunk = retrains[i:i + TRAIN_CHUNK]
            done = await asyncio.to_thread(self._train_chunk, core, db, chunk)
            for r in done:
                logger.debug("junk trained", account=account, message=r.message_id,
                             old=str(r.old) or "none", new=str(r.new) or "none")

    def _train_chunk(self, core: AccountStore, db: JunkDatabase, chunk: list[Retrain]
                     ) -> list[Retrain]:
        """In a worker thread: the words of each message, then one transaction for the
        chunk; the retrains done (a message gone meanwhile has nothing to learn from)."""
        items: list[tuple[list[str], Retrain]] = []
        for r in chunk:
            started = time.monotonic()
            try:
                data = core.read(r.message_id)
            except (StoreError, OSError):
                continue  # gone meanwhile: nothing to learn from
            items.append((self.cpu.call(message_words, data), r))
            junk_metrics.TRAIN_SECONDS.observe(time.monotonic() - started)
        db.retrain_many(items)
        for _words, r in items:
            if r.old is not Class.UNKNOWN:
                junk_metrics.TRAINING_EVENTS.labels(**{"class": str(r.old),
                                                       "direction": "remove"}).inc()
            if r.new is not Class.UNKNOWN:
                junk_metrics.TRAINING_EVENTS.labels(**{"class": str(r.new),
                                                       "direction": "add"}).inc()
        return [r for _words, r in items]

    async def train_all(self, account: str,
                        progress: Callable[[int, int], None] | None = None) -> Stats:
        """Retrain from scratch from the account's mailboxes (``kittiwake junk train``)."""
        async with self._lock(account):
            return await self._train_all(account, progress)

    async def _train_all(self, account: str,
                         progress: Callable[[int, int], None] | None) -> Stats:
        db = await self.database(account)
        acc = await self._account(account)
        self.recent.forget(account)
        await asyncio.to_thread(db.reset_words)
        # The mailboxes are read one after the other while the user may move mail: a
        # message moved from one read already into one read later is listed twice. It
        # is trained once, as the later listing (the newer state, its row's) says; the
        # changes the learner hears after this bring the rest up to date.
        located: dict[int, Retrain | None] = {}
        for mailbox in await acc.mailboxes():
            for m in await acc.messages(mailbox.name):
                located.pop(m.id, None)  # its place in the order: the later listing's
                located[m.id] = await asyncio.to_thread(
                    db.located, m.id, mailbox.name, m.uid, m.flags.system, m.flags.keywords,
                    m.message_id, m.received)
        retrains = [r for r in located.values() if r is not None]
        batch: list[tuple[list[str], Class, int | None]] = []
        for done, r in enumerate(retrains, 1):
            try:
                data = await acc.read(r.message_id)
            except (StoreError, OSError):
                continue
            batch.append((await asyncio.to_thread(self.cpu.call, message_words, data), r.new,
                          r.message_id))
            junk_metrics.TRAINING_EVENTS.labels(**{"class": str(r.new), "direction": "add"}).inc()
            if len(batch) >= 200 or done == len(retrains):
                await asyncio.to_thread(db.train_batch, batch)
                batch = []
            if progress is not None:
                progress(done, len(retrains))
        if batch:
            await asyncio.to_thread(db.train_batch, batch)
        await asyncio.to_thread(db.mark_trained)
        self.recent.forget(account)  # (verdicts decided while it trained)
        logger.info("junk trained from mailboxes", account=account, messages=len(retrains))
        return await asyncio.to_thread(db.stats)

    async def check(self, account: str, message: bytes) -> CheckResult:
        """The content score of a message against the account's training (no history)."""
        settings = self.settings(account) or JunkConfig()
        db = await self.database(account)

        def run() -> CheckResult:
            ham, junk = db.totals()
            words = self.cpu.call(message_words, message)
            result = score(words, db.counts(words), ham, junk)
            trained = min(ham, junk) >= settings.min_training_messages
            action = Action.ACCEPT
            if trained and rejects(settings, result.probability):
                action = Action.REJECT
            elif trained and result.probability >= settings.junk_threshold:
                action = Action.JUNK
            return CheckResult(result.probability if trained else None, result.words[:20],
                               ham, junk, action)

        return await asyncio.to_thread(run)

    async def stats(self, account: str) -> Stats:
        db = await self.database(account)
        return await asyncio.to_thread(db.stats)

    # --- the Rejects mailbox ---------------------------------------------------------

    async def expunge_old_rejects(self) -> int:
        """Remove messages older than ``rejects_days`` from every account's Rejects."""
        removed = 0
        for name, conf in self.domains().accounts.items():
            if not conf.junk.enabled:
                continue
            cutoff = int(self.clock() * 1000) - conf.junk.rejects_days * DAY_MS
            acc = await self._account(name)
            try:
                old = [m.uid for m in await acc.messages(conf.junk.rejects_mailbox)
                       if m.received < cutoff]
            except MailboxNotFound:
                continue
            if not old:
                continue
            await acc.store_flags(conf.junk.rejects_mailbox, old, "add", Flags.parse(["\\Deleted"]))
            gone = await acc.expunge(conf.junk.rejects_mailbox, old)
            removed += len(gone)
            junk_metrics.REJECTS_EXPUNGED.inc(len(gone))
            logger.info("rejects expunged", account=name, mailbox=conf.junk.rejects_mailbox,
                        messages=len(gone), older_than_days=conf.junk.rejects_days)
        return removed

    async def train_untrained(self) -> list[str]:
        """Train, from their mailboxes, the accounts never trained as a whole before
        (new accounts, or accounts that had mail before the filter)."""
        trained = []
        for name, conf in self.domains().accounts.items():
            if not conf.junk.enabled:
                continue
            db = await self.database(name)
            if await asyncio.to_thread(db.is_trained):
                continue
            await self.train_all(name)
            trained.append(name)
        return trained

    async def _sweep_rejects(self) -> None:
        """Hourly, the first time a minute after start (start-up touches no account);
        then, too, accounts never trained are trained from their mailboxes."""
        await asyncio.sleep(REJECTS_FIRST_SWEEP_SECONDS)
        with guard("junk", "training from the mailboxes failed"):
            await self.train_untrained()
        while True:
            with guard("junk", "expunging old rejects failed"):
                await self.expunge_old_rejects()
            await asyncio.sleep(REJECTS_SWEEP_SECONDS)

    async def close(self) -> None:
        await self.recorded()
        # What was heard is learnt before the followers stop (within a bound).
        with contextlib.suppress(TimeoutError):
            await self.settled(CLOSE_DRAIN_SECONDS)
        await cancel_and_wait(self._sweeper)
        self._sweeper = None
        await self._followers.close()
        for db in self._dbs.values():
            db.close()
        self._dbs.clear()


def _not_recorded(recorded: dict[tuple[str, int], float], mailbox: str,
                  uids: list[int]) -> list[int]:
    """The UIDs of an "added" change the learner must look at: not those the MX just
    delivered (taken from ``recorded``). record_delivery writes their rows as
    :meth:`JunkDatabase.located` would (the mailbox they went to, no flags: the MX
    delivers none) and trains what they ask for, so reading the store's rows back
    and writing them again would change nothing."""
    now = time.monotonic()
    while recorded:  # the oldest first: drop those too old to trust
        key = next(iter(recorded))
        if now - recorded[key] < RECORDED_SECONDS:
            break
        del recorded[key]
    left = []
    for uid in uids:
        if recorded.pop((mailbox, uid), None) is None:
            left.append(uid)
    return left


def _kept(items: Iterable[T], into: list[T]) -> Iterator[T]:
    """``items`` as they come, each also appended to ``into``."""
    for item in items:
        into.append(item)
        yield item


def _bytes_of(message: bytes | Callable[[], bytes]) -> bytes:
    """The message's bytes: as given, or read by the function given for them."""
    return message() if callable(message) else message
