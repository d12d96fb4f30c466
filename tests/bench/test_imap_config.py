"""The IMAP benchmark's kittiwake.conf is valid and asks for what the benchmark needs."""

from __future__ import annotations

import imaplib
from pathlib import Path

from bench.imap import fetch_count, kittiwake_config, start_kittiwake
from bench.imapcorpus import Corpus

from kittiwake.config import load_static
from kittiwake.config.static import enabled_services


def test_config_has_imap_listener_and_high_limits(tmp_path: Path) -> None:
    conf = tmp_path / "config"
    conf.mkdir()
    (conf / "kittiwake.conf").write_text(kittiwake_config(tmp_path / "data", "127.0.0.1",
                                                          14300, 20000))
    static = load_static(conf)
    assert [enabled_services(listener) for listener in static.listeners.values()] == [
        [("imap", 14300)]]
    assert static.listeners["bench"].ips == ["127.0.0.1"]
    assert static.limits.max_connections == 20000
    assert static.limits.max_connections_per_ip == 20000


def test_fetch_count_counts_responses_not_literal_pieces() -> None:
    # imaplib splits a response with literals into (head, literal) tuples and tails.
    data = [(b"1 (UID 1 BODY[] {5}", b"hello"), b")",
            (b"2 (UID 2 ENVELOPE (NIL {3}", b"a b"), b' NIL) BODY[] {2}', b")",
            b"3 (UID 3 FLAGS (\\Seen))"]
    assert fetch_count(data) == 3  # type: ignore[arg-type]


def test_start_kittiwake_serves_the_corpus(tmp_path: Path) -> None:
    """The CLI set-up (domain, account, password, import maildir, serve) the benchmark uses."""
    Corpus(20, seed=3, hits=4).write_maildir(tmp_path / "corpus")
    ep = start_kittiwake(tmp_path / "corpus", work=tmp_path)
    try:
        imap = imaplib.IMAP4(ep.host, ep.port, timeout=30)
        assert imap.login(ep.user, ep.password)[0] == "OK"
        typ, data = imap.select("INBOX")
        assert (typ, data) == ("OK", [b"20"])
        imap.logout()
        assert ep.processes() and all(pid > 0 for pid in ep.processes())
    finally:
        ep.stop()
