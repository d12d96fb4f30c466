"""Metrics of ACME certificates, all ``kittiwake_acme_*``.

Orders by authority and result (``ok``, ``failed``, ``caa-forbidden``);
renewal errors (every failed attempt, whatever the step); per certificate
(first name and key type) since when its orders keep failing, so that one
name set's failure is not hidden by another's success; the expiry time of
the certificate being served per host name and key type, which an alert
compares with ``time()`` (contrib/prometheus).
"""

from __future__ import annotations

from kittiwake import metrics

ORDER_RESULTS = ("ok", "failed", "caa-forbidden")

ORDERS = metrics.counter(
    "acme_orders",
    "ACME certificate orders, by authority ([acme.NAME]) and result.",
    ["authority", "result"])

RENEWAL_ERRORS = metrics.counter(
    "acme_renewal_errors",
    "Failed attempts to obtain or renew a certificate (retried with backoff), by authority.",
    ["authority"])

FAILING_SINCE = metrics.gauge(
    "acme_certificate_failing_since_timestamp_seconds",
    "When the orders for a certificate started failing without a success since (Unix"
    " time), by its first host name and key type; 0 while the last order succeeded.",
    ["name", "key_type"])

CERTIFICATE_EXPIRY = metrics.gauge(
    "acme_certificate_expiry_timestamp_seconds",
    "When the ACME certificate in use for a host name expires (Unix time), by key type.",
    ["name", "key_type"])


def preinit_authority(authority: str) -> None:
    """Create the authority's series at 0."""
    metrics.preinit(ORDERS, authority=(authority,), result=ORDER_RESULTS)
    RENEWAL_ERRORS.labels(authority=authority)
