"""``kittiwake junk train|check|stats``: as an administrator runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kittiwake.cli.main import cli
from kittiwake.store import AccountStore, Flags
from kittiwake.store.store import account_dir

SPAM = b"Subject: you won\r\n\r\ncheap pills winner casino prize viagra bonus\r\n"
HAM = b"Subject: project\r\n\r\nmeeting project agenda lunch tomorrow review\r\n"


def kittiwake(config_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config_dir), *args])


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    conf = tmp_path / "config"
    conf.mkdir()
    (conf / "kittiwake.conf").write_text('hostname = "mail.example.org"\ndata_dir = "../data"\n')
    (conf / "domains.conf").write_text("")
    for args in (["domain", "add", "example.org"],
                 ["account", "add", "alice", "alice@example.org"]):
        assert kittiwake(conf, *args).exit_code == 0
    with (conf / "domains.conf").open("a") as f:
        f.write("\n[accounts.alice.junk]\nmin_training_messages = 3\n")
    store = AccountStore("alice", account_dir(tmp_path / "data", "alice"))
    store.ensure_mailboxes(["Junk"])
    for i in range(3):
        store.deliver("Junk", SPAM.replace(b"won", b"won %d" % i))
        store.deliver("Inbox", HAM, flags=Flags.parse(["\\Seen"]))
    store.deliver("Inbox", HAM)  # unread: the user has not said anything about it yet
    store.close()
    return conf


def test_train_then_check_and_stats(config_dir: Path, tmp_path: Path) -> None:
    result = kittiwake(config_dir, "junk", "train", "alice")
    assert result.exit_code == 0, result.output
    assert "account alice: trained 3 ham and 3 junk messages" in result.output

    message = tmp_path / "offer.eml"
    message.write_bytes(b"Subject: prize\r\n\r\nviagra casino winner\r\n")
    result = kittiwake(config_dir, "junk", "check", "alice", str(message))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("verdict: junk, score 0.9")
    assert lines[1].split() == ["word", "junk", "probability", "points", "to"]
    assert {line.split()[0] for line in lines[2:]} == {"viagra", "casino", "winner"}
    assert all(line.split()[-1] == "junk" for line in lines[2:])

    checked = json.loads(kittiwake(config_dir, "junk", "check", "alice", str(message),
                                   "--json").output)
    assert checked["verdict"] == "junk" and checked["trained"] == {"ham": 3, "junk": 3}

    stats = kittiwake(config_dir, "junk", "stats", "alice")
    assert stats.exit_code == 0, stats.output
    rows = {line[:30].strip(): line[30:].strip() for line in stats.output.splitlines()[1:]}
    assert rows["ham messages trained"] == "3" and rows["junk messages trained"] == "3"
    assert rows["messages known"] == "7"
    as_json = json.loads(kittiwake(config_dir, "junk", "stats", "alice", "--json").output)
    assert as_json["enabled"] is True and as_json["ham_messages_trained"] == 3


def test_unknown_account_is_one_line(config_dir: Path) -> None:
    result = kittiwake(config_dir, "junk", "stats", "bob")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "kittiwake: no account 'bob' in domains.conf (known: alice)"]
