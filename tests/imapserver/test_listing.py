"""LIST/LSUB answers over mailbox trees (RFC 9051 §6.3.9, RFC 5258, RFC 6154)."""

from __future__ import annotations

from kittiwake.imapserver.listing import ListOptions, imap_name, list_mailboxes, lsub, store_name

BOXES = {"INBOX": "", "Sent": "\\Sent", "Archive": "\\Archive", "Archive/2024": "",
         "Work/Projects/Kittiwake": "", "INBOX/Receipts": ""}


def names(items) -> list[str]:  # type: ignore[no-untyped-def]
    return [i.name for i in items]


def test_star_matches_all_levels_inbox_first() -> None:
    assert names(list_mailboxes(BOXES, [], "", ["*"])) == [
        "INBOX", "INBOX/Receipts", "Archive", "Archive/2024", "Sent", "Work/Projects/Kittiwake"]


def test_percent_lists_one_level_with_nonexistent_parents() -> None:
    items = {i.name: i.attributes for i in list_mailboxes(BOXES, [], "", ["%"])}
    assert items == {
        "INBOX": ["\\HasChildren"], "Archive": ["\\HasChildren", "\\Archive"],
        "Sent": ["\\HasNoChildren", "\\Sent"], "Work": ["\\NonExistent", "\\HasChildren"]}


def test_reference_is_prefixed_and_inbox_case_insensitive() -> None:
    assert names(list_mailboxes(BOXES, [], "Archive/", ["%"])) == ["Archive/2024"]
    assert names(list_mailboxes(BOXES, [], "", ["inbox"])) == ["INBOX"]
    assert names(list_mailboxes(BOXES, [], "", ["InBoX/%"])) == ["INBOX/Receipts"]


def test_empty_pattern_gives_the_delimiter() -> None:
    [item] = list_mailboxes(BOXES, [], "", [""])
    assert (item.name, item.attributes) == ("", ["\\Noselect"])


def test_subscribed_selection_includes_gone_and_recursive_match() -> None:
    subs = ["Sent", "Old/Gone", "Work/Projects/Kittiwake"]
    opts = ListOptions(subscribed=True, recursive_match=True)
    items = {i.name: (i.attributes, i.childinfo)
             for i in list_mailboxes(BOXES, subs, "", ["%"], opts)}
    assert items["Sent"] == (["\\HasNoChildren", "\\Subscribed", "\\Sent"], [])
    assert items["Old"] == (["\\NonExistent", "\\HasNoChildren"], ["SUBSCRIBED"])
    assert items["Work"] == (["\\NonExistent", "\\HasChildren"], ["SUBSCRIBED"])
    assert "Archive" not in items


def test_special_use_selection() -> None:
    opts = ListOptions(special_use=True)
    assert names(list_mailboxes(BOXES, [], "", ["*"], opts)) == ["Archive", "Sent"]


def test_lsub_marks_unsubscribed_parents_noselect() -> None:
    items = lsub(BOXES, ["Work/Projects/Kittiwake", "Sent"], "", "%")
    assert [(i.name, i.attributes) for i in items] == [("Sent", []), ("Work", ["\\Noselect"])]


def test_inbox_names_translate_both_ways() -> None:
    assert imap_name("Inbox/Receipts") == "INBOX/Receipts" and imap_name("Inboxes") == "Inboxes"
    assert store_name("inbox") == "Inbox" and store_name("Sent") == "Sent"
