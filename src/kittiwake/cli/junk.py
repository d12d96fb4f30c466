"""``kittiwake junk train|check|stats ACCOUNT``: the junk filter of one account.

``train`` recounts the words from the account's mailboxes (Junk and
``$Junk`` as junk; ``$NotJunk``, answered, rescued and read mail in other
mailboxes as ham), ``check`` scores a message file against the training,
``stats`` shows what the filter knows. They open the account's store and
junk database directly (SQLite allows this while the server runs).
"""

from __future__ import annotations

from typing import Any

import click

from kittiwake.cli.common import UserError, load_config, print_json, read_input, run, table


def _config(ctx: click.Context, account: str) -> Any:
    config = load_config(ctx)
    if account not in config.domains.accounts:
        known = ", ".join(sorted(config.domains.accounts)) or "none"
        raise UserError(f"no account {account!r} in domains.conf (known: {known})")
    return config


async def _with_filter(config: Any, body: Any) -> Any:
    from kittiwake.junk import JunkFilter
    from kittiwake.store import Store

    store = Store(config.data_dir)
    junk = JunkFilter(store, lambda: config.domains)
    try:
        return await body(junk)
    finally:
        await junk.close()
        store.close()


def _stats_dict(stats: Any) -> dict[str, int]:
    return {"ham_messages_trained": stats.ham_messages,
            "junk_messages_trained": stats.junk_messages, "words": stats.words,
            "messages_known": stats.known_messages,
            "messages_with_sender_identities": stats.delivered_messages,
            "ham_in_history": stats.ham_known, "junk_in_history": stats.junk_known,
            "addresses_written_to": stats.sent_addresses}


@click.group("junk")
def junk_group() -> None:
    """The junk filter of an account: train, check a message, statistics."""


@junk_group.command("train")
@click.argument("account")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def junk_train(ctx: click.Context, account: str, as_json: bool) -> None:
    """Retrain ACCOUNT's filter from its mailboxes, from scratch."""
    from kittiwake.cli.progress import Progress

    config = _config(ctx, account)
    progress = Progress("trained")

    async def body(junk: Any) -> Any:
        return await junk.train_all(account, lambda done, total: progress.update(done))

    stats = run(lambda: _with_filter(config, body))
    progress.done()
    out = _stats_dict(stats)
    if as_json:
        print_json(out)
        return
    click.echo(f"account {account}: trained {stats.ham_messages} ham and"
               f" {stats.junk_messages} junk messages, {stats.words} words")


@junk_group.command("check")
@click.argument("account")
@click.argument("file", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def junk_check(ctx: click.Context, account: str, file: str | None, as_json: bool) -> None:
    """Score the message in FILE (or standard input) against ACCOUNT's training."""
    config = _config(ctx, account)
    data = read_input(file)

    async def body(junk: Any) -> Any:
        return await junk.check(account, data)

    result = run(lambda: _with_filter(config, body))
    out = {"verdict": str(result.verdict),
           "score": None if result.probability is None else round(result.probability, 4),
           "trained": {"ham": result.ham_messages, "junk": result.junk_messages},
           "words": [{"word": w, "junk_probability": round(p, 4)} for w, p in result.words]}
    if as_json:
        print_json(out)
        return
    if result.probability is None:
        click.echo(f"verdict: {result.verdict} (training too small: {result.ham_messages} ham,"
                   f" {result.junk_messages} junk messages)")
    else:
        click.echo(f"verdict: {result.verdict}, score {result.probability:.4f}")
    if result.words:
        rows = [[w, f"{p:.3f}", "junk" if p > 0.5 else "ham"] for w, p in result.words]
        click.echo(table(rows, ["word", "junk probability", "points to"]))


@junk_group.command("stats")
@click.argument("account")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def junk_stats(ctx: click.Context, account: str, as_json: bool) -> None:
    """What ACCOUNT's filter knows: training size, words, sender history."""
    config = _config(ctx, account)

    async def body(junk: Any) -> Any:
        return await junk.stats(account)

    out = _stats_dict(run(lambda: _with_filter(config, body)))
    settings = config.domains.accounts[account].junk
    if as_json:
        print_json({"account": account, "enabled": settings.enabled, **out})
        return
    rows = [["enabled", "yes" if settings.enabled else "no"]]
    rows += [[k.replace("_", " "), str(v)] for k, v in out.items()]
    click.echo(table(rows, ["", account]))
