"""The ACME order flow (RFC 8555 §7.4) as a pure step object.

:class:`OrderFlow` says what to do next (:meth:`OrderFlow.next_action`) and
takes what came back (:meth:`OrderFlow.receive`). No network, no clock, no
threads: the driver in :mod:`kittiwake.acme.client` performs each action
with the ``acme`` library and feeds the result back, in a loop of a few
lines (the shape of dnspython's ``_Resolution``). Each step of the order is
one row of :data:`STEPS`: the action it asks for and the handler of its
result.

The steps, RFC 8555 §7.4 and §7.5:
1. ``ordering``: POST newOrder with the identifiers (§7.4).
2. ``authorizing``: fetch each authorization (§7.5); for a pending one, pick
   the configured challenge, *provide* its answer (the listeners serve it),
   then tell the server it may validate (§7.5.1, an empty JSON object).
3. ``validating``: poll each answered authorization until it is valid or
   invalid (§7.5.1), waiting between polls.
4. ``finalizing``: POST the CSR to the order's finalize URL (§7.4).
5. ``processing``: poll the order while it is processing (§7.1.6).
6. ``downloading``: fetch the certificate chain (§7.4.2).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar

T = TypeVar("T")

# --- What the server tells us (RFC 8555 §7.1.3, §7.1.4, §8) -------------------------


class Status(enum.StrEnum):
    """Order, authorization and challenge status values (RFC 8555 §7.1.6)."""

    PENDING = "pending"
    READY = "ready"
    PROCESSING = "processing"
    VALID = "valid"
    INVALID = "invalid"
    EXPIRED = "expired"
    DEACTIVATED = "deactivated"
    REVOKED = "revoked"


@dataclass(frozen=True)
class Challenge:
    type: str
    url: str
    token: str
    status: str
    error: str | None = None


@dataclass(frozen=True)
class Authorization:
    url: str
    name: str
    status: str
    challenges: tuple[Challenge, ...]


@dataclass(frozen=True)
class Order:
    url: str
    status: str
    authorizations: tuple[str, ...]
    finalize: str
    certificate: str | None = None
    error: str | None = None


# --- What the driver is asked to do -------------------------------------------------


@dataclass(frozen=True)
class CreateOrder:
    names: tuple[str, ...]
    replaces: str | None = None  # RFC 9773 §5: the ARI certificate ID being renewed


@dataclass(frozen=True)
class FetchAuthorization:
    url: str


@dataclass(frozen=True)
class Provide:
    """Put the answer to ``challenge`` where the listeners serve it."""

    name: str
    challenge: Challenge


@dataclass(frozen=True)
class Respond:
    """POST ``{}`` to the challenge URL: ready to be validated (§7.5.1)."""

    challenge: Challenge


@dataclass(frozen=True)
class Wait:
    seconds: float


@dataclass(frozen=True)
class Finalize:
    url: str


@dataclass(frozen=True)
class FetchOrder:
    url: str


@dataclass(frozen=True)
class Download:
    url: str


@dataclass(frozen=True)
class Done:
    chain_pem: str


Action = (CreateOrder | FetchAuthorization | Provide | Respond | Wait | Finalize | FetchOrder
          | Download | Done)
Result = Order | Authorization | str | None


class Step(enum.StrEnum):
    ORDERING = "ordering"
    AUTHORIZING = "authorizing"
    VALIDATING = "validating"
    FINALIZING = "finalizing"
    PROCESSING = "processing"
    DOWNLOADING = "downloading"
    DONE = "done"


class OrderFailed(Exception):
    """The order cannot succeed; ``step`` says where it stopped."""

    def __init__(self, step: Step, message: str) -> None:
        super().__init__(f"{step.value}: {message}")
        self.step = step


@dataclass
class OrderFlow:
    """One order for ``names`` answered with ``challenge_type``."""

    names: tuple[str, ...]
    challenge_type: str
    replaces: str | None = None
    max_polls: int = 60
    first_wait: float = 0.25
    max_wait: float = 5.0
    step: Step = Step.ORDERING
    order: Order | None = None
    provided: list[Provide] = field(default_factory=list)
    _to_fetch: deque[str] = field(default_factory=deque)
    _to_validate: deque[str] = field(default_factory=deque)
    _side: deque[Action] = field(default_factory=deque)  # actions whose result is None
    _polls: int = 0
    _chain: str = ""

    def next_action(self) -> Action:
        if self._side:
            return self._side[0]
        return STEPS[self.step][0](self)

    def receive(self, result: Result) -> None:
        """The result of the action :meth:`next_action` returned last."""
        if self._side:
            self._side.popleft()
            return
        STEPS[self.step][1](self, result)

    # -- the steps: the action asked for, and the handler of its result ---------------

    def _ask_order(self) -> Action:
        return CreateOrder(self.names, self.replaces)

    def _got_order(self, result: Result) -> None:
        order = self._expect(result, Order)
        self.order = order
        self._to_fetch = deque(order.authorizations)
        self._after_order(order, Step.AUTHORIZING if order.status == Status.PENDING
                          else None)

    def _ask_authorization(self) -> Action:
        return FetchAuthorization(self._to_fetch[0])

    def _got_authorization(self, result: Result) -> None:
        authz = self._expect(result, Authorization)
        self._to_fetch.popleft()
        if authz.status == Status.PENDING:
            challenge = next((c for c in authz.challenges if c.type == self.challenge_type),
                             None)
            if challenge is None:
                offered = ", ".join(c.type for c in authz.challenges) or "none"
                raise OrderFailed(self.step, f"{authz.name}: the authority offers no"
                                  f" {self.challenge_type} challenge (offered: {offered})")
            provide = Provide(authz.name, challenge)
            self.provided.append(provide)
            self._side.extend([provide, Respond(challenge)])
            self._to_validate.append(authz.url)
        elif authz.status != Status.VALID:
            raise OrderFailed(self.step, f"{authz.name}: authorization is {authz.status}")
        if not self._to_fetch:
            self.step = Step.VALIDATING if self._to_validate else Step.FINALIZING

    def _ask_validation(self) -> Action:
        return FetchAuthorization(self._to_validate[0])

    def _got_validation(self, result: Result) -> None:
        authz = self._expect(result, Authorization)
        if authz.status == Status.VALID:
            self._to_validate.popleft()
            self._polls = 0
            if not self._to_validate:
                self.step = Step.FINALIZING
        elif authz.status in (Status.PENDING, Status.PROCESSING):
            self._wait()
        else:
            errors = "; ".join(f"{c.type}: {c.error}" for c in authz.challenges if c.error)
            raise OrderFailed(self.step, f"{authz.name}: authorization {authz.status}"
                              f" ({errors or 'no error given'})")

    def _ask_finalize(self) -> Action:
        assert self.order is not None
        return Finalize(self.order.finalize)

    def _got_finalized(self, result: Result) -> None:
        self._after_order(self._expect(result, Order), None)

    def _ask_order_status(self) -> Action:
        assert self.order is not None
        return FetchOrder(self.order.url)

    def _ask_download(self) -> Action:
        assert self.order is not None and self.order.certificate
        return Download(self.order.certificate)

    def _got_chain(self, result: Result) -> None:
        self._chain = self._expect(result, str)
        self.step = Step.DONE

    def _ask_nothing(self) -> Action:
        return Done(self._chain)

    def _got_nothing(self, result: Result) -> None:
        raise OrderFailed(self.step, "the order is already done")

    # -- helpers ------------------------------------------------------------------------

    def _after_order(self, order: Order, pending_step: Step | None) -> None:
        """Go where the order's status (§7.1.6) says."""
        self.order = order if order.url else _with_url(order, self.order)
        match order.status:
            case Status.PENDING if pending_step is not None:
                self.step = pending_step
                if not self._to_fetch:
                    raise OrderFailed(self.step, "pending order without authorizations")
            case Status.READY if self.step in (Step.ORDERING, Step.AUTHORIZING):
                self.step = Step.FINALIZING
            case Status.VALID if order.certificate:
                self.step = Step.DOWNLOADING
            case Status.INVALID:
                raise OrderFailed(self.step, f"order invalid ({order.error or 'no error given'})")
            case _:
                self.step = Step.PROCESSING
                self._wait()

    def _wait(self) -> None:
        self._polls += 1
        if self._polls > self.max_polls:
            raise OrderFailed(self.step, f"still not done after {self.max_polls} polls")
        self._side.append(Wait(min(self.first_wait * 2 ** (self._polls - 1), self.max_wait)))

    def _expect(self, result: Result, kind: type[T]) -> T:
        if not isinstance(result, kind):
            raise OrderFailed(self.step, f"expected {kind.__name__}, got {type(result).__name__}")
        return result


def _with_url(order: Order, previous: Order | None) -> Order:
    return replace(order, url=previous.url) if previous else order


Handler = Callable[[OrderFlow, Result], None]
Ask = Callable[[OrderFlow], Action]

# The order's steps: what each asks the driver to do, and what handles the answer.
STEPS: dict[Step, tuple[Ask, Handler]] = {
    Step.ORDERING: (OrderFlow._ask_order, OrderFlow._got_order),
    Step.AUTHORIZING: (OrderFlow._ask_authorization, OrderFlow._got_authorization),
    Step.VALIDATING: (OrderFlow._ask_validation, OrderFlow._got_validation),
    Step.FINALIZING: (OrderFlow._ask_finalize, OrderFlow._got_finalized),
    Step.PROCESSING: (OrderFlow._ask_order_status, OrderFlow._got_finalized),
    Step.DOWNLOADING: (OrderFlow._ask_download, OrderFlow._got_chain),
    Step.DONE: (OrderFlow._ask_nothing, OrderFlow._got_nothing),
}
