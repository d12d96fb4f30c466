"""Real IMAP clients (mbsync, offlineimap, mutt, curl, fetchmail) against ``imap_server``.

Each test does what a user does with the client and asserts what the user
would see, on both sides: the local Maildir (or screen, or file) and the
server's mailboxes as another IMAP client sees them (folders, messages by
Message-ID, flags). ``imap_server`` (tests/integration/conftest_imap.py) is
parametrised over servers; today Dovecot, soon kittiwake too.

Both sync tools sync a 1,000-message INBOX (plus two small folders). TLS
modes are spread over the tests: mbsync STARTTLS (and plaintext for the
no-change resync), offlineimap implicit TLS, mutt STARTTLS, curl all three,
fetchmail implicit, STARTTLS and plaintext. offlineimap is not run with
STARTTLS: against Dovecot, 3 of 12 runs of offlineimap3 0.0~git20211018 hung
for good right after ``OK Begin TLS negotiation now`` (2) or died of SIGSEGV
(1), and none did with ``-d imap`` (slower); it looks like imaplib2's reader
thread racing the TLS handshake, a client bug no server can avoid. With
implicit TLS, 23 of 23 runs passed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest_imap import IMAPServer
from .imapclients import (
    TLS_MODES,
    ClientRun,
    IMAPEndpoint,
    TLSMode,
    curl_command,
    curl_fetch,
    fetchmail_fetch,
    maildir_add,
    maildir_folders,
    maildir_set_flags,
    maildir_view,
    mbsync_sync,
    message_id,
    mutt_read_and_move,
    offlineimap_sync,
)

pytestmark = pytest.mark.integration

KEYWORD = "$Label1"
NESTED = "Lists/kittiwake"  # a folder below another, "/" whatever the server's separator


def make_message(n: int, tag: str = "seed") -> bytes:
    """A small, distinct RFC 5322 message; Message-ID ``<tag.n@kittiwake.test>``."""
    return (
        f"From: Sender {n} <sender{n}@example.test>\r\n"
        f"To: test@localhost\r\n"
        f"Subject: {tag} message {n}\r\n"
        f"Date: Tue, 01 Dec 2026 12:{n // 60 % 60:02d}:{n % 60:02d} +0000\r\n"
        f"Message-ID: <{tag}.{n}@kittiwake.test>\r\n"
        f"MIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n"
        f"\r\n"
        f"Body of {tag} message {n}: caf\u00e9, \u00fcber.\r\n"
        f"{'x' * (n % 90)}\r\n"
    ).encode()


def mid(n: int, tag: str = "seed") -> str:
    return f"<{tag}.{n}@kittiwake.test>"


def seed_flags(n: int) -> list[str]:
    """The flags message n is seeded with: a mix of \\Seen, \\Flagged, \\Answered, a keyword."""
    flags = []
    if n % 3 == 0:
        flags.append("\\Seen")
    if n % 10 == 0:
        flags.append("\\Flagged")
    if n % 17 == 0:
        flags.append("\\Answered")
    if n % 25 == 0:
        flags.append(KEYWORD)
    return flags


def seed(server: IMAPServer, count: int) -> None:
    """INBOX with ``count`` flagged-up messages, Archive with 5, a nested folder with 3."""
    start = time.monotonic()
    server.append("INBOX", ((make_message(n), seed_flags(n)) for n in range(count)))
    for folder, tag, k in (("Archive", "archive", 5), (NESTED, "list", 3)):
        server.create(folder)
        server.append(folder, ((make_message(n, tag), ["\\Seen"]) for n in range(k)))
    print(f"seeded {count} messages in {time.monotonic() - start:.1f}s")


def local_file(maildir: Path, folder: str, message: str) -> Path:
    """The file holding Message-ID ``message`` in a local Maildir folder."""
    for sub in ("cur", "new"):
        for f in (maildir / folder / sub).iterdir():
            if message_id(f.read_bytes()) == message:
                return f
    raise AssertionError(f"{message} not in local {folder}")


def assert_synced(server: IMAPServer, maildir: Path) -> dict[str, dict[str, frozenset[str]]]:
    """Both sides hold the same folders, messages and system flags; the server's view."""
    remote, local = server.snapshot(), maildir_view(maildir)
    assert sorted(local) == sorted(remote), "folders differ"
    for folder in remote:
        missing = set(remote[folder]) - set(local[folder])
        extra = set(local[folder]) - set(remote[folder])
        assert not missing and not extra, f"{folder}: only on server {sorted(missing)[:5]}, " \
                                          f"only local {sorted(extra)[:5]}"
        differ = {m: (remote[folder][m], local[folder][m]) for m in remote[folder]
                  if remote[folder][m] != local[folder][m]}
        assert not differ, f"{folder}: flags differ (server, local): {list(differ.items())[:5]}"
    return remote


def expected_seed_flags(n: int) -> frozenset[str]:
    return frozenset(f for f in seed_flags(n) if f.startswith("\\"))


SyncTool = Callable[[IMAPEndpoint, Path, Path], ClientRun]


def expected_folders(server: IMAPServer, names: list[str]) -> list[str]:
    """The folders a server shows for these: RFC 9051 §6.3.4 says CREATE SHOULD make the
    missing parents of a name, which kittiwake does (and the sync tools then mirror);
    Dovecot with Maildir++ does not."""
    out = set(names)
    if server.name == "kittiwake":
        for name in names:
            parts = name.split("/")
            out.update("/".join(parts[:i]) for i in range(1, len(parts)))
    return sorted(out)


def two_way_sync(server: IMAPServer, tmp_path: Path, count: int, sync: SyncTool,
                 tls: TLSMode) -> None:
    """The scenario both sync tools go through; ``sync(endpoint, maildir, workdir)``."""
    seed(server, count)
    maildir, work = tmp_path / "Mail", tmp_path / "home"
    work.mkdir()
    endpoint = server.endpoint(tls)

    run: ClientRun = sync(endpoint, maildir, work).check()
    print(f"first sync of {count} messages: {run.seconds:.1f}s")
    remote = assert_synced(server, maildir)
    assert sorted(remote) == expected_folders(server, ["INBOX", "Archive", NESTED])
    assert len(remote["INBOX"]) == count
    for n in range(count):
        assert remote["INBOX"][mid(n)] == expected_seed_flags(n), n
    # Keywords are not mirrored to a Maildir, but the sync must not lose them.
    keywords = server.keywords("INBOX")
    assert {m for m, k in keywords.items() if KEYWORD in k} == \
        {mid(n) for n in range(count) if KEYWORD in seed_flags(n)}

    # A change on each side: locally flag one, mark one seen, delete one, add one
    # (and a new folder with a message); on the server delete one, answer one,
    # add one.
    maildir_set_flags(local_file(maildir, "INBOX", mid(1)), "F")
    maildir_set_flags(local_file(maildir, "INBOX", mid(2)), "S")
    local_file(maildir, "INBOX", mid(4)).unlink()
    maildir_add(maildir / "INBOX", make_message(1, "local"), "S")
    new_folder = maildir / "FromLocal"
    for sub in ("cur", "new", "tmp"):
        (new_folder / sub).mkdir(parents=True)
    maildir_add(new_folder, make_message(2, "local"))
    uids = server.uids("INBOX")
    server.delete_message("INBOX", uids[mid(5)])
    server.store("INBOX", uids[mid(7)], "+FLAGS (\\Answered)")
    server.append("INBOX", [(make_message(1, "remote"), ["\\Flagged"])])
    server.append("Archive", [(make_message(2, "remote"), [])])

    run = sync(endpoint, maildir, work).check()
    print(f"second sync: {run.seconds:.1f}s")
    remote = assert_synced(server, maildir)
    assert sorted(remote) == expected_folders(server, ["INBOX", "Archive", NESTED, "FromLocal"])
    inbox = remote["INBOX"]
    assert len(inbox) == count - 2 + 2
    assert mid(4) not in inbox and mid(5) not in inbox
    assert inbox[mid(1)] == frozenset({"\\Flagged"})
    assert inbox[mid(2)] == frozenset({"\\Seen"})
    assert inbox[mid(7)] == expected_seed_flags(7) | {"\\Answered"}
    assert inbox[mid(1, "local")] == frozenset({"\\Seen"})
    assert inbox[mid(1, "remote")] == frozenset({"\\Flagged"})
    assert remote["FromLocal"] == {mid(2, "local"): frozenset()}
    assert mid(2, "remote") in remote["Archive"]
    for n in range(8, count):
        assert inbox[mid(n)] == expected_seed_flags(n), n
    # The uploaded message is the bytes the user had locally, apart from the
    # tracking header mbsync adds to find the new UID.
    uploaded = server.message("INBOX", server.uids("INBOX")[mid(1, "local")])
    if sync is mbsync_sync:
        uploaded = re.sub(rb"(?m)^X-TUID: [^\r\n]*\r\n", b"", uploaded, count=1)
    assert uploaded == make_message(1, "local")
    # The keyword is still on the server after flags were synced both ways.
    assert KEYWORD in server.keywords("INBOX")[mid(25)]


def test_mbsync_two_way_sync(imap_server: IMAPServer, tmp_path: Path) -> None:
    """mbsync (STARTTLS): 1,000 messages with flags, changes on both sides, resync."""
    two_way_sync(imap_server, tmp_path, 1000, mbsync_sync, "starttls")


def test_offlineimap_two_way_sync(imap_server: IMAPServer, tmp_path: Path) -> None:
    """offlineimap (implicit TLS): the same scenario."""
    two_way_sync(imap_server, tmp_path, 1000, offlineimap_sync, "implicit")


def test_mbsync_plain_and_nothing_to_do(imap_server: IMAPServer, tmp_path: Path) -> None:
    """A second mbsync run with no change on either side changes nothing (plaintext)."""
    seed(imap_server, 20)
    maildir, work = tmp_path / "Mail", tmp_path / "home"
    work.mkdir()
    endpoint = imap_server.endpoint("plain")
    mbsync_sync(endpoint, maildir, work).check()
    before_remote, before_local = imap_server.snapshot(), maildir_view(maildir)
    files = sorted(p.name for f in maildir_folders(maildir) for p in f.rglob("*"))
    mbsync_sync(endpoint, maildir, work).check()
    assert imap_server.snapshot() == before_remote
    assert maildir_view(maildir) == before_local
    assert sorted(p.name for f in maildir_folders(maildir) for p in f.rglob("*")) == files


def test_mutt_reads_and_moves(imap_server: IMAPServer, tmp_path: Path) -> None:
    """In mutt the user opens the first message (now \\Seen) and saves it to Archive."""
    imap_server.append("INBOX", [(make_message(n), []) for n in range(3)])
    imap_server.create("Archive")
    run = mutt_read_and_move(imap_server.endpoint("starttls"), tmp_path,
                             subject="seed message 0", body_text="Body of seed message 0",
                             target="Archive")
    print(f"mutt: {run.seconds:.1f}s")
    # The user saw the index with all three, then the message in the pager.
    assert all(f"seed message {n}" in run.index_screen for n in range(3)), run.index_screen
    assert "Subject: seed message 0" in run.pager_screen, run.pager_screen
    assert "caf\u00e9, \u00fcber." in run.pager_screen, run.pager_screen
    remote = imap_server.snapshot()
    assert remote["Archive"] == {mid(0): frozenset({"\\Seen"})}
    assert remote["INBOX"] == {mid(1): frozenset(), mid(2): frozenset()}
    moved = imap_server.uids("Archive")[mid(0)]
    assert imap_server.message("Archive", moved) == make_message(0)


@pytest.mark.parametrize("tls", TLS_MODES)
def test_curl_fetch_and_search(imap_server: IMAPServer, tmp_path: Path, tls: TLSMode) -> None:
    """curl imap[s]://.../INBOX;UID=n prints the exact message; -X 'UID SEARCH' finds it."""
    messages = [make_message(n) for n in range(3)]
    imap_server.append("INBOX", [(m, []) for m in messages])
    endpoint = imap_server.endpoint(tls)
    uids = imap_server.uids("INBOX")
    uid = uids[mid(1)]
    run = curl_fetch(endpoint, tmp_path, "INBOX", uid).check()
    assert run.stdout == messages[1]
    # curl fetches BODY[] (not BODY.PEEK[]): the message is \Seen now, the others not.
    assert imap_server.flags("INBOX") == {u: frozenset({"\\Seen"}) if u == uid else frozenset()
                                          for u in uids.values()}
    run = curl_command(endpoint, tmp_path, "INBOX", 'UID SEARCH SUBJECT "message 1"').check()
    assert run.stdout.split(b"\r\n")[0].split() == [b"*", b"SEARCH", str(uid).encode()]
    run = curl_command(endpoint, tmp_path, "INBOX", "UID SEARCH UNSEEN").check()
    assert sorted(int(u) for u in run.stdout.split()[2:]) == \
        sorted(u for u in uids.values() if u != uid)


def test_curl_wrong_password_fails(imap_server: IMAPServer, tmp_path: Path) -> None:
    """curl with a wrong password fails with curl's login error (67) and prints no message."""
    imap_server.append("INBOX", [(make_message(0), [])])
    good = imap_server.endpoint("implicit")
    bad = type(good)(good.host, good.port, good.tls, good.ca_file, good.user, "wrong")
    run = curl_fetch(bad, tmp_path, "INBOX", 1)
    assert run.returncode == 67, run.output
    assert run.stdout == b""


@pytest.mark.parametrize(("keep", "tls"), [(True, "implicit"), (False, "starttls"),
                                          (False, "plain")])
def test_fetchmail(imap_server: IMAPServer, tmp_path: Path, keep: bool, tls: TLSMode) -> None:
    """fetchmail delivers every message (seen or not) to the Maildir; --keep leaves them."""
    messages = [make_message(n) for n in range(12)]
    imap_server.append("INBOX", [(m, seed_flags(n)) for n, m in enumerate(messages)])
    maildir, work = tmp_path / "fetched", tmp_path / "home"
    work.mkdir()
    run = fetchmail_fetch(imap_server.endpoint(tls), maildir, work,
                          keep=keep).check()
    print(f"fetchmail: {run.seconds:.1f}s")
    delivered = sorted((f.read_bytes() for f in (maildir / "new").iterdir()), key=message_id)
    # fetchmail hands the MDA the message with LF line ends, otherwise unchanged.
    assert delivered == sorted((m.replace(b"\r\n", b"\n") for m in messages), key=message_id)
    remote = imap_server.snapshot()["INBOX"]
    if keep:
        assert remote == {mid(n): expected_seed_flags(n) | {"\\Seen"} for n in range(12)}
    else:
        assert remote == {}
        assert imap_server.count("INBOX") == 0
    # A second run: with keep and fetchall every kept message comes again;
    # without keep there is nothing left (fetchmail's exit status 1, "no mail").
    again = fetchmail_fetch(imap_server.endpoint(tls), maildir, work, keep=keep)
    assert again.returncode == (0 if keep else 1), again.output
    assert len(list((maildir / "new").iterdir())) == (24 if keep else 12)
