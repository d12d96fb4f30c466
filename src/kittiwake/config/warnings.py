"""Settings that work but leave something off: ``config test`` warnings and start-up log lines.

A problem (see :mod:`kittiwake.config.load`) stops the server; a warning does
not, but a user should hear what does not work and how to fix it, both from
``kittiwake config test`` and in the start-up log.

Listeners without a TLS certificate: STARTTLS is not offered (RFC 3207), so
MX traffic arrives unencrypted and senders that insist on TLS (MTA-STS
"enforce", RFC 8461 §5; DANE, RFC 7672 §2.2) cannot deliver at all; and
submission offers no AUTH (RFC 4954 §4 and RFC 8314 §3.3 only over TLS), so
mail clients cannot log in. Implicit TLS (submissions, imaps) without a
certificate cannot work at all: that is a problem, reported by the loader,
not here. A listener with ``tls.acme`` has certificates once the authority
issued them (the first start), so none of this applies to it; instead the
authority must be able to reach the challenge it validates
(:func:`acme_warnings`): tls-alpn-01 (RFC 8737 §3) connects to port 443 of
the name, so an https service on port 443 must be enabled; http-01 (RFC 8555
§8.3) fetches from port 80, so an http service on port 80 (or one behind a web
server, ``reverse_proxied``) must be.
"""

from __future__ import annotations

from dataclasses import dataclass

from kittiwake.config.static import Listener, StaticConfig, enabled_services

CERTIFICATE_FIX = ('set listeners.{name}.tls.certificates = [{{ cert_file = "CERT.pem",'
                   ' key_file = "KEY.pem" }}] (PEM certificate chain and its key)')


@dataclass(frozen=True)
class ConfigWarning:
    """One setting that leaves something off: where, what is off, and the fix."""

    where: str  # field path, e.g. "listeners.public.submission"
    off: str  # what does not work
    consequence: str
    fix: str

    def text(self, file: str = "kittiwake.conf") -> str:
        """The line ``config test`` prints."""
        return (f"{file}: {self.where}: warning: {self.off}: {self.consequence};"
                f" to fix: {self.fix}")


# Where the authority connects to validate each challenge type.
CHALLENGE_SERVICE = {"tls-alpn-01": ("https", 443), "http-01": ("http", 80)}


def _has_certificate(listener: Listener) -> bool:
    """Certificate files, or certificates from ACME (after the first order)."""
    return bool(listener.tls and (listener.tls.certificates or listener.tls.acme))


def acme_warnings(static: StaticConfig) -> list[ConfigWarning]:
    """Listeners whose ACME challenge no enabled service can answer where it is asked."""
    out: list[ConfigWarning] = []
    for name, listener in static.listeners.items():
        if not (listener.tls and listener.tls.acme in static.acme):
            continue
        authority = listener.tls.acme
        challenge = static.acme[authority].challenge
        service, port = CHALLENGE_SERVICE[challenge]
        ports = [dict(enabled_services(other)).get(service)
                 for other in static.listeners.values()]
        proxied = service == "http" and any(
            other.http.enabled and other.http.reverse_proxied
            for other in static.listeners.values())
        if port in ports or proxied:
            continue
        enabled = sorted({p for p in ports if p is not None})
        if enabled:
            off = (f"the {challenge} challenge of acme.{authority} is validated on port"
                   f" {port}, but {service} is enabled only on port"
                   f"{'s' if len(enabled) > 1 else ''} {', '.join(map(str, enabled))}")
            fix = (f"serve {service} on port {port} (listeners.NAME.{service}.port), or"
                   f" forward port {port} of the host to it")
            if service == "http":
                fix += " (or run it behind a web server: http.reverse_proxied)"
        else:
            off = (f"the {challenge} challenge of acme.{authority} needs a {service}"
                   f" service, and no listener enables {service}")
            fix = (f"set listeners.{name}.{service}.enabled = true"
                   + (" (port 443)" if service == "https" else
                      " (port 80, or reverse_proxied behind a web server)"))
        out.append(ConfigWarning(f"listeners.{name}.tls.acme", off,
                                 "the authority cannot validate the names, so no certificate"
                                 " is issued and STARTTLS, submission AUTH and IMAP LOGIN"
                                 " stay off", fix))
    return out


def config_warnings(static: StaticConfig) -> list[ConfigWarning]:
    """Every warning: listeners without certificates, ACME challenges nobody answers."""
    return [*tls_warnings(static), *acme_warnings(static)]


def tls_warnings(static: StaticConfig) -> list[ConfigWarning]:
    """What each listener without a certificate cannot offer (STARTTLS, AUTH)."""
    out: list[ConfigWarning] = []
    for name, listener in static.listeners.items():
        if _has_certificate(listener):
            continue
        fix = CERTIFICATE_FIX.format(name=name)
        ports = dict(enabled_services(listener))
        if "smtp" in ports and not listener.smtp.no_starttls:
            out.append(ConfigWarning(
                f"listeners.{name}.smtp",
                f"no TLS certificate, so STARTTLS is not offered on port {ports['smtp']}",
                "incoming mail arrives unencrypted, and senders that require TLS"
                " (MTA-STS enforce, DANE) cannot deliver", fix))
        if "submission" in ports:
            if listener.submission.no_require_starttls:
                out.append(ConfigWarning(
                    f"listeners.{name}.submission",
                    f"no TLS certificate, so STARTTLS is not offered on port"
                    f" {ports['submission']}",
                    "passwords and mail travel unencrypted (no_require_starttls allows AUTH"
                    " without TLS)", fix))
            else:
                out.append(ConfigWarning(
                    f"listeners.{name}.submission",
                    f"no TLS certificate, so neither STARTTLS nor AUTH is offered on port"
                    f" {ports['submission']}",
                    "mail clients cannot log in to submit mail", fix))
        if "imap" in ports:
            if listener.imap.no_require_starttls:
                out.append(ConfigWarning(
                    f"listeners.{name}.imap",
                    f"no TLS certificate, so STARTTLS is not offered on port {ports['imap']}",
                    "passwords and mail travel unencrypted (no_require_starttls allows LOGIN"
                    " without TLS)", fix))
            else:
                out.append(ConfigWarning(
                    f"listeners.{name}.imap",
                    f"no TLS certificate, so neither STARTTLS nor LOGIN is offered on port"
                    f" {ports['imap']} (LOGINDISABLED)",
                    "mail clients cannot log in to read mail", fix))
    return out
