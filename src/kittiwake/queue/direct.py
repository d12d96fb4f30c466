"""Direct delivery to a recipient domain's MX hosts (RFC 5321 §5) with DANE and MTA-STS.

For one batch (one message, one destination domain):

1. MX lookup (RFC 5321 §5.1): hosts by preference, equal preferences in
   random order; NODATA means the implicit MX (the domain itself); NXDOMAIN
   and a null MX (RFC 7505 §3) fail permanently; DNS trouble is temporary.
2. MTA-STS (RFC 8461 §4): in ``enforce`` mode only hosts matching the policy
   are used and their certificates must be PKIX-valid for the host name;
   ``testing`` mode logs and delivers.
3. DANE (RFC 7672): when the MX answer and the host's address answer were
   DNSSEC-authentic, TLSA records are looked up; usable ones make STARTTLS
   and a matching certificate mandatory; a TLSA lookup failure defers the
   host; authentic but unusable records still require TLS, unverified.
4. Otherwise opportunistic TLS (RFC 7435): STARTTLS when offered, a retry in
   plain text after a TLS handshake failure.
5. REQUIRETLS (RFC 8689 §5): only verified TLS (DANE or PKIX) to a server
   announcing REQUIRETLS; ``TLS-Required: No`` makes MTA-STS and DANE
   failures non-fatal (RFC 8689 §5).

Every connection's TLS outcome is recorded for TLSRPT (RFC 8460).
"""

from __future__ import annotations

import ipaddress
import random
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kittiwake import dane
from kittiwake.dns import DNSTemporaryError, InvalidName, Resolver
from kittiwake.log import get_logger
from kittiwake.queue.model import Batch, DeliveryError, DeliveryResult, Outcome
from kittiwake.smtpclient import (
    AuthError,
    Client,
    ConnectError,
    MessageSource,
    ProtocolError,
    SMTPClientError,
    TLSError,
    TLSInfo,
    TLSMode,
    TLSRejection,
    TLSVerify,
    unverified_context,
)
from kittiwake.smtpclient import Outcome as ClientOutcome
from kittiwake.tlsrpt import PolicyType, ResultType, TLSResult

logger = get_logger("queue")


@dataclass
class DirectOptions:
    """How direct delivery behaves; from the transport config and the server."""

    hostname: str  # our EHLO name
    port: int = 25
    disable_ipv4: bool = False
    disable_ipv6: bool = False
    strict_8bitmime: bool = False
    timeout: float | None = None  # all stages; None = RFC 5321 defaults
    pkix_context: ssl.SSLContext | None = None  # for MTA-STS/REQUIRETLS; tests inject a CA
    connect: Callable[..., Any] | None = None  # tests: override Client.connect
    pool: Any = None  # ConnectionPool: reuse a session for the next batch to the same host


@dataclass
class Attempt:
    """What happened while trying one domain; becomes the recipients' results."""

    error: DeliveryError | None = None
    permanent: bool = False
    tls_results: list[TLSResult] = field(default_factory=list)


class HostFailed(Exception):
    """This host could not take the message; try the next one."""

    def __init__(self, error: DeliveryError, permanent: bool = False) -> None:
        super().__init__(error.text)
        self.error = error
        self.permanent = permanent


async def mx_hosts(resolver: Resolver, domain: str) -> tuple[list[str], bool]:
    """MX hosts in delivery order and whether the MX answer was authentic.

    Raises HostFailed (permanent for NXDOMAIN/null MX, else temporary).
    """
    # These are kittiwake's own findings: no server replied (DeliveryError.ours).
    try:
        answer = await resolver.mx(domain)
    except DNSTemporaryError as exc:
        # RFC 3463 X.4.3: directory server failure.
        raise HostFailed(DeliveryError.ours("4.4.3", f"MX lookup for {domain} failed: {exc}")
                         ) from None
    except InvalidName as exc:
        # RFC 3463 X.1.2: bad destination system address.
        raise HostFailed(DeliveryError.ours("5.1.2", f"bad domain {domain}: {exc}"),
                         permanent=True) from None
    if answer.nxdomain:
        raise HostFailed(DeliveryError.ours("5.1.2", f"domain {domain} does not exist"
                                            " (the DNS answered NXDOMAIN)"), permanent=True)
    records = list(answer.records)
    if any(r.is_null for r in records):
        # RFC 7505 §4.1: a null MX means the domain accepts no mail; §4.2 / RFC 7505
        # IANA: X.1.10 "Recipient address has null MX".
        raise HostFailed(DeliveryError.ours("5.1.10", f"domain {domain} accepts no mail:"
                                            " it publishes a null MX (RFC 7505)"),
                         permanent=True)
    if not records:
        return [domain], answer.authentic  # RFC 5321 §5.1: implicit MX
    by_pref: dict[int, list[str]] = {}
    for r in records:
        by_pref.setdefault(r.preference, []).append(r.exchange)
    hosts: list[str] = []
    for pref in sorted(by_pref):
        group = by_pref[pref]
        random.shuffle(group)  # RFC 5321 §5.1: spread load over equal preferences
        hosts.extend(h for h in group if h not in hosts)
    return hosts, answer.authentic


async def deliver_direct(batch: Batch, data: MessageSource, resolver: Resolver,
                         options: DirectOptions, sts_cache: Any = None
                         ) -> tuple[list[DeliveryResult], Attempt]:
    """Deliver one batch to its domain's MX hosts; results per recipient."""
    attempt = Attempt()
    domain = batch.domain
    message = batch.message
    rcpts = [r.address for r in batch.recipients]
    try:
        hosts, mx_authentic = await mx_hosts(resolver, domain)
    except HostFailed as exc:
        attempt.error, attempt.permanent = exc.error, exc.permanent
        return _all(batch, attempt), attempt

    sts = None
    if sts_cache is not None:
        try:
            sts = await sts_cache.get_policy(resolver, domain)
        except Exception as exc:  # a policy problem must not stop delivery
            logger.warning("mta-sts policy not available", domain=domain, error=exc)
    sts_policy = sts.policy if sts is not None else None
    enforce_sts = bool(sts is not None and sts.enforce) and not message.tls_required_no
    if sts is not None and sts.failure is not None:
        attempt.tls_results.append(TLSResult(domain, PolicyType.STS, ResultType(
            sts.tlsrpt_result_type), reason=sts.reason))

    testing_sts = bool(sts is not None and sts_policy is not None and not sts.enforce
                       and str(sts_policy.mode) == "testing")
    permanent_hosts = 0
    for host in hosts:
        if testing_sts and sts is not None and not sts.mx_allowed(host):
            # RFC 8461 §5: in testing mode, report the failure and deliver anyway.
            attempt.tls_results.append(TLSResult(
                domain, PolicyType.STS, ResultType.VALIDATION_FAILURE, host,
                reason=f"MX host {host} is not in the MTA-STS policy of {domain} (testing)"))
        if enforce_sts and sts is not None and not sts.mx_allowed(host):
            reason = f"MX host {host} is not in the MTA-STS policy of {domain}"
            logger.info("mx host not in mta-sts policy", domain=domain, host=host)
            attempt.tls_results.append(TLSResult(domain, PolicyType.STS,
                                                 ResultType.VALIDATION_FAILURE, host,
                                                 reason=reason))
            attempt.error = DeliveryError.ours("4.7.5", reason, host)  # X.7.5 cryptographic failure
            continue
        try:
            results = await _deliver_host(batch, data, rcpts, host, mx_authentic, resolver,
                                          options, attempt, enforce_sts, sts_policy is not None,
                                          testing_sts and sts is not None and
                                          sts.mx_allowed(host))
        except HostFailed as exc:
            attempt.error = exc.error
            if exc.permanent:
                permanent_hosts += 1
            continue
        return results, attempt
    attempt.permanent = permanent_hosts == len(hosts) and permanent_hosts > 0
    if attempt.error is None:
        attempt.error = DeliveryError.ours("4.4.4", f"no usable MX host for {domain}")
    return _all(batch, attempt), attempt


def _all(batch: Batch, attempt: Attempt) -> list[DeliveryResult]:
    """Every recipient gets the destination's failure (no host took the message)."""
    outcome = Outcome.PERMANENT if attempt.permanent else Outcome.TEMPORARY
    return [DeliveryResult(r.id, outcome, attempt.error,
                           destination=outcome is Outcome.TEMPORARY) for r in batch.recipients]


async def _deliver_host(batch: Batch, data: MessageSource, rcpts: list[str], host: str,
                        mx_authentic: bool, resolver: Resolver, options: DirectOptions,
                        attempt: Attempt, enforce_sts: bool,
                        has_sts: bool, testing_pkix: bool = False) -> list[DeliveryResult]:
    message = batch.message
    domain = batch.domain
    try:
        addresses = await resolver.ips(host)
    except (DNSTemporaryError, InvalidName) as exc:
        raise HostFailed(DeliveryError.ours("4.4.3", f"address lookup of {host} failed: {exc}",
                                            host)) from None
    ips = [str(ip) for ip in addresses.records
           if not (options.disable_ipv4 and ipaddress.ip_address(str(ip)).version == 4)
           and not (options.disable_ipv6 and ipaddress.ip_address(str(ip)).version == 6)]
    if not ips:
        raise HostFailed(DeliveryError.ours("4.4.4", f"{host} has no usable address", host))

    tlsa = None
    if mx_authentic and addresses.authentic:
        tlsa = await dane.lookup_tlsa_for_host(resolver, host, options.port, addresses)
        if tlsa.status is dane.TLSAStatus.TEMPERROR and not message.tls_required_no:
            # RFC 7672 §2.2.1: never fall back when the TLSA lookup failed.
            attempt.tls_results.append(TLSResult(domain, PolicyType.TLSA,
                                                 ResultType.DNSSEC_INVALID, host,
                                                 reason=tlsa.reason))
            raise HostFailed(DeliveryError.ours("4.7.5", f"TLSA lookup for {host} failed:"
                                                f" {tlsa.reason} (DANE, RFC 7672 §2.2)", host))
    policy_type = PolicyType.TLSA if tlsa is not None and tlsa.tls_required else \
        PolicyType.STS if has_sts else PolicyType.NO_POLICY
    requiretls = bool(message.requiretls)

    # Decide the TLS mode and how the certificate is checked.
    verify: TLSVerify | None = None
    context: ssl.SSLContext | None = None
    if tlsa is not None and tlsa.dane_required and not message.tls_required_no:
        verify = dane_verifier(tlsa, host)
        mode, context = TLSMode.STARTTLS, unverified_context()
    elif tlsa is not None and tlsa.tls_required and not message.tls_required_no:
        mode, context = TLSMode.STARTTLS, unverified_context()  # usable-less TLSA: TLS only
    elif (enforce_sts or requiretls) and not message.tls_required_no:
        mode = TLSMode.STARTTLS
        context = options.pkix_context or ssl.create_default_context()
    elif testing_pkix:
        # MTA-STS testing mode: try PKIX-verified TLS so failures can be reported
        # (RFC 8461 §5); on failure the opportunistic retry below still delivers.
        mode = TLSMode.OPPORTUNISTIC
        context = options.pkix_context or ssl.create_default_context()
    else:
        mode, context = TLSMode.OPPORTUNISTIC, unverified_context()

    last: HostFailed | None = None
    for ip in ips:
        try:
            return await _session(batch, data, rcpts, host, ip, mode, context, verify, options,
                                  attempt, policy_type)
        except TLSError as exc:
            reason = str(exc)
            # The client's typed error says what failed (RFC 8460 §4.3), not its text.
            attempt.tls_results.append(TLSResult(
                domain, policy_type, ResultType(exc.tlsrpt_result_type), host, ip, reason))
            if mode is TLSMode.OPPORTUNISTIC and exc.handshake and not requiretls:
                retry_mode, retry_context = TLSMode.NONE, None
                if testing_pkix:
                    retry_mode, retry_context = TLSMode.OPPORTUNISTIC, unverified_context()
                logger.info("tls handshake failed; retrying", host=host, ip=ip, error=reason,
                            retry="unverified" if testing_pkix else "plaintext")
                try:
                    return await _session(batch, data, rcpts, host, ip, retry_mode,
                                          retry_context, None, options, attempt, policy_type)
                except SMTPClientError as plain_exc:
                    last = _host_failed(plain_exc, host)
                    continue
            last = HostFailed(DeliveryError.ours("4.7.5", f"TLS with {host} failed: {reason}",
                                                 host))
        except SMTPClientError as exc:
            last = _host_failed(exc, host)
            if last.permanent:
                break
    assert last is not None
    raise last


def dane_verifier(tlsa: dane.TLSALookup, host: str) -> TLSVerify:
    """The certificate check for a host with usable, authentic TLSA records
    (RFC 7672 §3): the chain must match one of them, for the host's names."""
    names = dane.reference_identifiers(host, tlsa.base_domain)
    records: Sequence[Any] = tlsa.usable

    def verify(info: TLSInfo) -> TLSRejection | None:
        result = dane.verify(records, info.chain_der, names)
        if result.ok:
            return None
        return TLSRejection(f"DANE: {result.reason}",
                            result.tlsrpt_result_type or "validation-failure")

    return verify


def _host_failed(exc: SMTPClientError, host: str) -> HostFailed:
    """A session error as a recipient error: the server's reply when it gave one,
    else what kittiwake saw (never a made-up reply code)."""
    reply = exc.reply
    if reply is not None:
        return HostFailed(DeliveryError(reply.code, reply.enhanced or "", " ".join(reply.lines),
                                        host), permanent=not exc.temporary)
    return HostFailed(DeliveryError.ours(_status_of(exc), f"{host}: {exc}", host),
                      permanent=False)


def _status_of(exc: SMTPClientError) -> str:
    """The RFC 3463 code of a session failure without a reply."""
    if isinstance(exc, ConnectError):
        return "4.4.1"  # no answer from host
    if isinstance(exc, TLSError):
        return "4.7.5"  # cryptographic failure
    if isinstance(exc, AuthError):
        return "4.7.0"  # other security status
    if isinstance(exc, ProtocolError):
        return "4.5.0"  # other protocol status
    return "4.4.2"  # bad connection (lost, timed out)


async def _session(batch: Batch, data: MessageSource, rcpts: list[str], host: str, ip: str,
                   mode: TLSMode, context: ssl.SSLContext | None,
                   verify: TLSVerify | None, options: DirectOptions,
                   attempt: Attempt, policy_type: PolicyType) -> list[DeliveryResult]:
    connect = options.connect or Client.connect
    message = batch.message
    key = (ip, options.port, str(mode), host, verify is None)
    pool = options.pool
    client = pool.take(key) if pool is not None else None
    reused = client is not None
    if client is None:
        client = await connect(ip, options.port, local_hostname=options.hostname,
                               timeouts=options.timeout, tls=mode, tls_context=context,
                               tls_server_name=host, tls_verify=verify, remote_name=host)
        if pool is not None:
            pool.opened()
    try:
        if client.tls is not None:
            attempt.tls_results.append(TLSResult(batch.domain, policy_type, ResultType.SUCCESS,
                                                 host, ip))
        elif policy_type is PolicyType.NO_POLICY:
            attempt.tls_results.append(TLSResult(batch.domain, policy_type,
                                                 ResultType.STARTTLS_NOT_SUPPORTED, host, ip,
                                                 "no STARTTLS; delivered in plain text"))
        result = await client.deliver(
            message.mail_from, rcpts, data, smtputf8=message.smtputf8,
            eightbit=message.eightbit, requiretls=bool(message.requiretls),
            strict=options.strict_8bitmime, ret=message.ret, envid=message.envid)
        if reused and client.closed and not result.delivered:
            # The parked session had died (idle timeout at the server): once more, fresh.
            attempt.tls_results.pop()
            return await _session(batch, data, rcpts, host, ip, mode, context, verify,
                                  _without_pool(options), attempt, policy_type)
    except BaseException:
        await client.close()
        raise
    if pool is not None and not client.closed:
        pool.give(key, client)
    else:
        await client.quit()
    return results_for(batch, result, host)


def _without_pool(options: DirectOptions) -> DirectOptions:
    from dataclasses import replace

    return replace(options, pool=None)


def results_for(batch: Batch, result: Any, host: str) -> list[DeliveryResult]:
    """Map the SMTP client's per-recipient results onto queue results."""
    out = []
    for recipient, rr in zip(batch.recipients, result.recipients, strict=True):
        if rr.outcome is ClientOutcome.DELIVERED:
            out.append(DeliveryResult(recipient.id, Outcome.OK))
            continue
        reply = rr.reply
        if reply is None:
            # The client decided (8-bit data for a server without 8BITMIME in pedantic
            # mode, SMTPUTF8 or REQUIRETLS not offered, too large, connection lost):
            # no reply from the server, so none is reported.
            reason = rr.reason
            if rr.enhanced == "5.6.3" and "8BITMIME" in reason:
                # Only in pedantic mode; say why, since most MTAs would send it anyway.
                reason += (" (pedantic = true: kittiwake does not send 8-bit data to a server"
                           " that does not announce 8BITMIME, RFC 6152 §3)")
            error = DeliveryError.ours(rr.enhanced or "", reason, host)
        else:
            error = DeliveryError(reply.code, reply.enhanced or "", " ".join(reply.lines),
                                  host)
        outcome = Outcome.TEMPORARY if rr.outcome is ClientOutcome.TEMPORARY else \
            Outcome.PERMANENT
        out.append(DeliveryResult(recipient.id, outcome, error))
    return out
