"""The order flow as a pure step object: each RFC 8555 step in a few lines, no server."""

from __future__ import annotations

import pytest

from kittiwake.acme.order import (
    Authorization,
    Challenge,
    CreateOrder,
    Done,
    Download,
    FetchAuthorization,
    FetchOrder,
    Finalize,
    Order,
    OrderFailed,
    OrderFlow,
    Provide,
    Respond,
    Step,
    Wait,
)

HTTP = Challenge("http-01", "https://ca/chall/1", "tok", "pending")
ALPN = Challenge("tls-alpn-01", "https://ca/chall/2", "tok", "pending")


def order(status: str, certificate: str | None = None) -> Order:
    return Order("https://ca/order/1", status, ("https://ca/authz/1",), "https://ca/fin/1",
                 certificate)


def authz(status: str, *challenges: Challenge) -> Authorization:
    return Authorization("https://ca/authz/1", "mail.example.org", status,
                         challenges or (HTTP, ALPN))


def test_the_whole_flow() -> None:
    flow = OrderFlow(("mail.example.org",), "tls-alpn-01")
    assert flow.next_action() == CreateOrder(("mail.example.org",))
    flow.receive(order("pending"))
    assert flow.next_action() == FetchAuthorization("https://ca/authz/1")
    flow.receive(authz("pending"))
    assert flow.next_action() == Provide("mail.example.org", ALPN)
    flow.receive(None)
    assert flow.next_action() == Respond(ALPN)
    flow.receive(None)
    assert flow.step is Step.VALIDATING
    assert flow.next_action() == FetchAuthorization("https://ca/authz/1")
    flow.receive(authz("pending"))
    assert isinstance(flow.next_action(), Wait)
    flow.receive(None)
    flow.receive(authz("valid"))
    assert flow.next_action() == Finalize("https://ca/fin/1")
    flow.receive(Order("", "processing", (), "https://ca/fin/1"))  # no Location on finalize
    assert isinstance(flow.next_action(), Wait)
    flow.receive(None)
    assert flow.next_action() == FetchOrder("https://ca/order/1")
    flow.receive(order("valid", "https://ca/cert/1"))
    assert flow.next_action() == Download("https://ca/cert/1")
    flow.receive("-----BEGIN CERTIFICATE-----")
    assert flow.next_action() == Done("-----BEGIN CERTIFICATE-----")
    assert flow.provided == [Provide("mail.example.org", ALPN)]  # for the driver to withdraw


def test_valid_authorization_is_not_answered_again() -> None:
    flow = OrderFlow(("mail.example.org",), "http-01")
    flow.receive(order("pending"))
    flow.receive(authz("valid"))
    assert flow.next_action() == Finalize("https://ca/fin/1")
    assert flow.provided == []


def test_ready_order_goes_straight_to_finalize() -> None:
    flow = OrderFlow(("mail.example.org",), "http-01")
    flow.receive(order("ready"))
    assert flow.next_action() == Finalize("https://ca/fin/1")


def test_missing_challenge_type_fails_with_what_was_offered() -> None:
    flow = OrderFlow(("mail.example.org",), "tls-alpn-01")
    flow.receive(order("pending"))
    with pytest.raises(OrderFailed, match=r"no tls-alpn-01 challenge.*offered: http-01"):
        flow.receive(authz("pending", HTTP))


def test_invalid_authorization_carries_the_challenge_error() -> None:
    flow = OrderFlow(("mail.example.org",), "http-01")
    flow.receive(order("pending"))
    flow.receive(authz("pending"))
    flow.receive(None)
    flow.receive(None)
    failed = Challenge("http-01", HTTP.url, "tok", "invalid", "connection: refused")
    with pytest.raises(OrderFailed, match=r"validating: .*connection: refused"):
        flow.receive(authz("invalid", failed))


def test_polling_gives_up() -> None:
    flow = OrderFlow(("mail.example.org",), "http-01", max_polls=2)
    flow.receive(order("pending"))
    flow.receive(authz("pending"))
    flow.receive(None)
    flow.receive(None)
    with pytest.raises(OrderFailed, match="after 2 polls"):
        for _ in range(5):
            flow.receive(authz("pending"))
            assert isinstance(flow.next_action(), Wait)
            flow.receive(None)


def test_invalid_order() -> None:
    flow = OrderFlow(("mail.example.org",), "http-01")
    with pytest.raises(OrderFailed, match="order invalid"):
        flow.receive(Order("u", "invalid", (), "f", error="rejectedIdentifier: no"))
