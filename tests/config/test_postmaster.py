"""postmaster@ must reach a real account (RFC 5321 §4.5.1), from the first account on."""

from __future__ import annotations

import asyncio
import smtplib
from pathlib import Path

from click.testing import CliRunner

from kittiwake.cli.main import cli
from kittiwake.config import load, load_domains
from kittiwake.config.reload import DomainsWatcher
from kittiwake.dns import MockResolver
from kittiwake.smtpserver.context import ServerContext
from kittiwake.smtpserver.service import SMTPService
from kittiwake.store import AccountStore, Store
from kittiwake.store.store import account_dir

MESSAGE = b"From: carol@sender.example\r\nSubject: for the postmaster\r\n\r\nhello\r\n"


def run(config_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config_dir), *args])
    return result.exit_code, result.output


def fresh_config(tmp_path: Path) -> Path:
    """What the README does: describe-static, then domain add and account add."""
    conf = tmp_path / "config"
    conf.mkdir()
    code, text = run(conf, "config", "describe-static")
    assert code == 0
    (conf / "kittiwake.conf").write_text(text)
    assert run(conf, "domain", "add", "example.org")[0] == 0
    assert run(conf, "account", "add", "alice", "alice@example.org")[0] == 0
    return conf


def send(port: int, rcpts: list[str]) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", port, local_hostname="mail.sender.example",
                      timeout=10) as client:
        return client.sendmail("carol@sender.example", rcpts, MESSAGE)


async def test_fresh_config_routes_postmaster_to_the_new_account(tmp_path: Path) -> None:
    config = load(fresh_config(tmp_path))
    ctx = ServerContext(hostname=config.static.hostname, store=Store(config.data_dir),
                        domains=config.domains, resolver=MockResolver(),
                        postmaster_account=config.static.postmaster_account)
    service = SMTPService(ctx, "smtp", ["127.0.0.1"], 0)
    await service.start()
    try:
        port = int(service.addresses()[0].rsplit(":", 1)[1])
        refused = await asyncio.to_thread(send, port, ["postmaster@example.org",
                                                       "postmaster"])
    finally:
        await service.close(1)
        ctx.store.close()
    assert refused == {}
    store = AccountStore("alice", account_dir(config.data_dir, "alice"))
    try:
        [message] = store.messages("Inbox")
        assert store.read(message.id).endswith(MESSAGE)
    finally:
        store.close()


def test_removing_the_postmaster_account_is_refused(tmp_path: Path) -> None:
    conf = fresh_config(tmp_path)
    assert run(conf, "account", "add", "bob", "bob@example.org")[0] == 0
    static = (conf / "kittiwake.conf").read_text()
    (conf / "kittiwake.conf").write_text(static.replace('postmaster_account = ""',
                                                        'postmaster_account = "alice"'))
    code, text = run(conf, "account", "rm", "alice")
    assert code == 1
    assert text.strip() == (f"kittiwake: {conf}/kittiwake.conf: postmaster_account: no account"
                            " 'alice' in domains.conf (known: bob); postmaster@ mail must reach"
                            " a real account (RFC 5321 §4.5.1): add it with `kittiwake account"
                            " add alice ADDRESS` or name another")
    assert "alice" in load_domains(conf).accounts
    assert run(conf, "config", "test")[0] == 0


def test_reload_keeps_the_old_config_when_the_postmaster_account_goes(tmp_path: Path) -> None:
    conf = fresh_config(tmp_path)
    static = (conf / "kittiwake.conf").read_text()
    (conf / "kittiwake.conf").write_text(static.replace('postmaster_account = ""',
                                                        'postmaster_account = "alice"'))
    config = load(conf)
    watcher = DomainsWatcher(conf, config.domains, static=config.static)
    text = (conf / "domains.conf").read_text()
    (conf / "domains.conf").write_text(text.replace("accounts.alice", "accounts.alicia"))
    assert not watcher.check()
    assert "alice" in watcher.current.accounts


def test_postmaster_named_before_its_account_exists(tmp_path: Path) -> None:
    """kittiwake.conf first (naming the postmaster), then domain add and account add."""
    conf = tmp_path / "config"
    conf.mkdir()
    (conf / "kittiwake.conf").write_text('hostname = "mail.example.org"\n'
                                         'postmaster_account = "alice"\n')
    assert run(conf, "config", "test")[0] == 0
    assert run(conf, "domain", "add", "example.org")[0] == 0
    code, text = run(conf, "account", "add", "bob", "bob@example.org")
    assert code == 1
    assert text.strip().endswith("postmaster_account: no account 'alice' in domains.conf"
                                 " (known: bob); postmaster@ mail must reach a real account"
                                 " (RFC 5321 §4.5.1): add it with `kittiwake account add alice"
                                 " ADDRESS` or name another")
    assert run(conf, "account", "add", "alice", "alice@example.org")[0] == 0
    assert run(conf, "account", "add", "bob", "bob@example.org")[0] == 0
    assert run(conf, "config", "test")[0] == 0
