"""Control-socket commands for the queue (``kittiwake queue ...`` talks to these).

:func:`register_control` adds ``queue-list``, ``queue-hold``, ``queue-release``,
``queue-kick``, ``queue-drop``, ``queue-dump`` and ``queue-holdrules-list``,
``-add``, ``-remove`` to a :class:`kittiwake.server.control.ControlServer`.

Selecting arguments (all optional, combined with AND): ``id`` (int or list of
ints), ``account``, ``from_domain``, ``to_domain``. ``hold``, ``release`` and
``drop`` without any of them need ``"all": true``, so that a forgotten filter
does not act on the whole queue.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

from kittiwake.queue.model import Dropped, Filter, QueuedMessage, QueueError, Recipient, to_json
from kittiwake.queue.queue import Queue
from kittiwake.server.control import ControlError, ControlServer, Progress

DUMP_CHUNK = 256 * 1024
LIST_CHUNK = 500
DROP_SHOWN = 1000

OnDropped = Callable[[list[Dropped]], Awaitable[None]]


def register_control(server: ControlServer, queue: Queue,
                     on_dropped: OnDropped | None = None) -> None:
    """Register the queue commands; ``on_dropped`` may send DSNs for dropped mail.

    With ``on_dropped`` the files of dropped messages are removed only after it ran.
    """
    handlers = _Handlers(queue, on_dropped)
    server.register("queue-list", handlers.list)
    server.register("queue-hold", handlers.hold)
    server.register("queue-release", handlers.release)
    server.register("queue-kick", handlers.kick)
    server.register("queue-drop", handlers.drop)
    server.register("queue-dump", handlers.dump)
    server.register("queue-holdrules-list", handlers.rules_list)
    server.register("queue-holdrules-add", handlers.rules_add)
    server.register("queue-holdrules-remove", handlers.rules_remove)


def parse_filter(args: dict[str, Any]) -> Filter:
    """The selecting arguments of a request; ControlError on wrong types."""
    raw = args.get("id")
    if raw is None or raw == []:
        ids: tuple[int, ...] = ()
    else:
        items = raw if isinstance(raw, list) else [raw]
        try:
            ids = tuple(_int(i) for i in items)
        except ValueError:
            raise ControlError(f"id must be a message id (a number), not {raw!r}") from None
    strings = {}
    for key in ("account", "from_domain", "to_domain"):
        value = args.get(key) or ""
        if not isinstance(value, str):
            raise ControlError(f"{key} must be a string")
        strings[key] = value.strip()
    return Filter(ids=ids, **strings)


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value)
    raise ValueError(value)


def recipient_json(message: QueuedMessage, rcpt: Recipient) -> dict[str, Any]:
    """One row of ``queue-list``."""
    return {
        "message_id": message.id, "recipient_id": rcpt.id, "account": message.account,
        "from": message.mail_from, "to": rcpt.address, "domain": rcpt.domain,
        "size": message.size, "created": message.created.isoformat(),
        "release_at": message.release_at.isoformat() if message.release_at else None,
        "attempts": rcpt.attempts, "next_attempt": rcpt.next_attempt.isoformat(),
        "last_attempt": rcpt.last_attempt.isoformat() if rcpt.last_attempt else None,
        "last_error": to_json(rcpt.last_error), "held": rcpt.held,
        "dsn_delayed_sent": rcpt.dsn_delayed_sent, "smtputf8": message.smtputf8,
        "requiretls": message.requiretls,
    }


class _Handlers:
    def __init__(self, queue: Queue, on_dropped: OnDropped | None) -> None:
        self.queue = queue
        self.on_dropped = on_dropped

    def _selection(self, args: dict[str, Any], verb: str) -> Filter:
        where = parse_filter(args)
        if where.is_empty() and not args.get("all"):
            raise ControlError(f"say which messages to {verb} (id, account, from/to domain)"
                               " or all")
        return where

    async def list(self, args: dict[str, Any], progress: Progress) -> Any:
        """Rows come as progress objects ``{"queued": [...]}`` / ``{"history": [...]}``
        of at most LIST_CHUNK rows each (a control line is limited to 1 MiB); the
        result is ``{"now": ISO time, "queued": N, "history": M}``."""
        where = parse_filter(args)
        rows = [recipient_json(m, r) for m, r in await self.queue.list(where)]
        for start in range(0, len(rows), LIST_CHUNK):
            await progress({"queued": rows[start:start + LIST_CHUNK]})
        out: dict[str, Any] = {"now": self.queue.clock().isoformat(), "queued": len(rows)}
        if args.get("all"):
            history = await self.queue.history(where, limit=_limit(args.get("limit"), 100))
            items = [to_json(h) for h in history]
            for start in range(0, len(items), LIST_CHUNK):
                await progress({"history": items[start:start + LIST_CHUNK]})
            out["history"] = len(items)
        return out

    async def hold(self, args: dict[str, Any], progress: Progress) -> Any:
        return {"count": await self.queue.hold(self._selection(args, "hold"))}

    async def release(self, args: dict[str, Any], progress: Progress) -> Any:
        return {"count": await self.queue.release(self._selection(args, "release"))}

    async def kick(self, args: dict[str, Any], progress: Progress) -> Any:
        return {"count": await self.queue.kick(parse_filter(args))}

    async def drop(self, args: dict[str, Any], progress: Progress) -> Any:
        where = self._selection(args, "drop")
        keep = self.on_dropped is not None
        dropped = await self.queue.drop(where, keep_files=keep)
        if self.on_dropped is not None:
            try:
                await self.on_dropped(dropped)
            finally:
                gone = await self._gone([d.message.id for d in dropped])
                await self.queue.remove_files(gone)
        return {
            "count": sum(len(d.recipients) for d in dropped),
            "messages": len(dropped),
            "dropped": [{"message_id": d.message.id, "from": d.message.mail_from,
                         "recipients": [r.address for r in d.recipients]}
                        for d in dropped[:DROP_SHOWN]],
        }

    async def _gone(self, message_ids: list[int]) -> list[int]:
        """Those of ``message_ids`` that have no row any more."""
        gone = []
        for mid in message_ids:
            try:
                await self.queue.message(mid)
            except QueueError:
                gone.append(mid)
        return gone

    async def dump(self, args: dict[str, Any], progress: Progress) -> Any:
        try:
            message_id = _int(args.get("id"))
        except ValueError:
            raise ControlError("dump needs a message id (a number)") from None
        try:
            data = await self.queue.read(message_id)
        except QueueError as exc:
            raise ControlError(str(exc)) from None
        for start in range(0, len(data), DUMP_CHUNK):
            chunk = data[start:start + DUMP_CHUNK]
            await progress({"data": base64.b64encode(chunk).decode("ascii")})
        return {"id": message_id, "size": len(data)}

    async def rules_list(self, args: dict[str, Any], progress: Progress) -> Any:
        return [to_json(r) for r in await self.queue.hold_rules()]

    async def rules_add(self, args: dict[str, Any], progress: Progress) -> Any:
        fields = parse_filter({k: args.get(k) for k in ("account", "from_domain", "to_domain")})
        try:
            rule = await self.queue.add_hold_rule(fields.account, fields.from_domain,
                                                  fields.to_domain)
        except QueueError as exc:
            raise ControlError(str(exc)) from None
        return to_json(rule)

    async def rules_remove(self, args: dict[str, Any], progress: Progress) -> Any:
        try:
            rule_id = _int(args.get("id"))
        except ValueError:
            raise ControlError("holdrules remove needs a rule id (a number)") from None
        try:
            rule = await self.queue.remove_hold_rule(rule_id)
        except QueueError as exc:
            raise ControlError(str(exc)) from None
        return to_json(rule)


def _limit(value: Any, default: int) -> int:
    try:
        return max(1, min(_int(value), 10000)) if value is not None else default
    except ValueError:
        raise ControlError("limit must be a number") from None
