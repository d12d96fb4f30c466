"""Connection ids: on every line inside a bound context, per asyncio task."""

from __future__ import annotations

import asyncio
import logging
import re

from kittiwake import log


def test_new_connection_id_unique_and_short() -> None:
    ids = [log.new_connection_id() for _ in range(10000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[a-z2-7]{8}", cid) for cid in ids)


def test_cid_on_every_line_in_context(logs) -> None:
    logs.setup("trace")
    logger = log.get_logger("smtpserver")
    logger.info("before")
    with log.bind(cid="c1", remote="192.0.2.1"):
        logger.info("one")
        logging.getLogger("kittiwake.smtpserver").warning("plain stdlib logger")
        log.SMTPTranscript(logger).client(b"EHLO x")
        with log.bind(account="alice"):
            logger.debug("nested")
        logger.info("two")
    logger.info("after")
    recs = logs.records()
    assert [r.get("cid") for r in recs] == [None, "c1", "c1", "c1", "c1", "c1", None]
    assert recs[4]["account"] == "alice" and "account" not in recs[5]
    assert all(r["remote"] == "192.0.2.1" for r in recs[1:6])


def test_with_fields(logs) -> None:
    logs.setup("info")
    logger = log.get_logger("queue").with_fields(msgid=42)
    with log.bind(cid="c9"):
        logger.info("retry", attempt=2)
    rec = logs.records()[0]
    assert (rec["cid"], rec["msgid"], rec["attempt"]) == ("c9", "42", "2")


async def test_concurrent_tasks_keep_their_own_cid(logs) -> None:
    logs.setup("trace")
    logger = log.get_logger("imapserver")

    async def connection(n: int, cids: dict[int, str]) -> None:
        cid = log.new_connection_id()
        cids[n] = cid
        log.bind_fields(cid=cid)
        t = log.IMAPTranscript(logger)
        for i in range(5):
            logger.info("step", task=n, i=i)
            t.client(f"a{i} NOOP".encode())
            await asyncio.sleep(0)  # let the other tasks run in between

    cids: dict[int, str] = {}
    logger.info("outside")
    await asyncio.gather(*(connection(n, cids) for n in range(20)))
    logger.info("outside again")
    recs = logs.records()
    assert len(recs) == 2 + 20 * 10
    assert "cid" not in recs[0] and "cid" not in recs[-1]
    last_task = None
    switched = 0
    for i in range(1, len(recs) - 1, 2):
        step, line = recs[i], recs[i + 1]
        n = int(step["task"])
        assert step["cid"] == cids[n] and line["cid"] == cids[n]
        switched += last_task is not None and n != last_task
        last_task = n
    assert switched > 20  # the tasks really interleaved
