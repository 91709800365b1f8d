"""The webhook receiver: alerts POSTed as JSON to an HTTP(S) endpoint, optionally signed.

A CMMS, a chat bridge or any small HTTP service can receive meshwatch alerts this way. The
body is the alert JSON of docs/design.md §3, the same as on ``meshwatch/alerts/{site}/{asset}``:

- an ungrouped notification sends each alert as its own POST whose body is exactly that
  alert's JSON object;
- a grouped notification (its route sets ``group_by``) sends ONE POST whose body is a JSON
  array of the alert objects.

Headers: ``Content-Type: application/json``, ``User-Agent: meshwatch/<version>``,
``X-Meshwatch-Delivery`` (the notification's unique id; ``<id>-<n>`` for the n-th POST of a
notification that makes several), ``X-Meshwatch-Signature`` when a secret is set, and the
configured extra headers. A retried notification carries the same delivery ids, so the far
end can drop duplicates; a retry resends every POST of the notification.

Outcomes: any 2xx is delivered. 408, 425, 429 and 5xx, connection errors and timeouts are
retryable (``Retry-After`` becomes `DeliveryError.retry_after`); redirects and the other 4xx
are not, since sending the same request again cannot change the answer.

Verifying the signature
-----------------------
With a secret set, ``X-Meshwatch-Signature`` is ``sha256=`` followed by the hex HMAC-SHA256 of
the exact body bytes, keyed with the secret. The receiving side recomputes it over the raw
body, before parsing it, and compares in constant time::

    import hmac
    from alerts.receivers.webhook import sign

    expected = sign(b"the shared secret", request_body_bytes)
    if not hmac.compare_digest(expected, request.headers["X-Meshwatch-Signature"]):
        reject(401)

Without meshwatch installed, ``"sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()``
is the same value.

Settings
--------
Under ``alerts.receivers`` in the configuration::

    receivers:
      - name: maintenance
        webhook:
          url: "https://cmms.example/hooks/meshwatch"
          secret: "..."              # optional: signs each body (X-Meshwatch-Signature)
          timeout: 5.0               # seconds to connect, and for each read or write
          headers: {Authorization: "Bearer ..."}   # optional extra headers
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.metadata
import math
import re
import time
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

import orjson
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr, field_validator

from alerts.base import Notification
from alerts.errors import DeliveryError

if TYPE_CHECKING:  # httpx is imported by a receiver, not by reading the settings
    import httpx

# Statuses a later retry may turn into a success: Request Timeout, Too Early, Too Many Requests
# (RFC 9110 §15.5.9, RFC 8470 §5.2, RFC 6585 §4); every 5xx is retryable too.
_RETRYABLE_4XX = frozenset({408, 425, 429})
# How much of a refusing server's body an error message quotes: enough for its reason.
_BODY_QUOTE = 200
# Headers meshwatch sets itself; configured extra headers may not replace them.
_OWN_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "user-agent",
        "x-meshwatch-delivery",
        "x-meshwatch-signature",
    }
)
# An HTTP field name (RFC 9110 §5.1 token).
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _version() -> str:
    """The installed version of meshwatch, or ``dev`` when running from an uninstalled tree."""
    try:
        return importlib.metadata.version("meshwatch")
    except importlib.metadata.PackageNotFoundError:
        return "dev"


USER_AGENT = f"meshwatch/{_version()}"


def sign(secret: bytes, body: bytes) -> str:
    """The ``X-Meshwatch-Signature`` value of a body: ``sha256=<hex HMAC-SHA256>``.

    Parameters
    ----------
    secret
        The webhook's shared secret, as bytes (UTF-8 of the configured string).
    body
        The exact bytes of the request body.

    Returns
    -------
    str
        ``"sha256="`` followed by 64 lowercase hex digits.

    Examples
    --------
    >>> sign(b"key", b"The quick brown fox jumps over the lazy dog")
    'sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8'
    """
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookSettings(BaseModel):
    """Settings of a webhook receiver: where to POST, how to sign, how long to wait."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: HttpUrl
    secret: SecretStr | None = None
    timeout: float = Field(5.0, gt=0)
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("secret")
    @classmethod
    def _secret_not_empty(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and not secret.get_secret_value():
            raise ValueError("webhook.secret is empty: set a secret or remove the key")
        return secret

    @field_validator("headers")
    @classmethod
    def _headers_are_extra(cls, headers: dict[str, str]) -> dict[str, str]:
        for key, value in headers.items():
            if not _TOKEN.fullmatch(key):
                raise ValueError(f"webhook.headers: {key!r} is not a valid HTTP header name")
            if key.lower() in _OWN_HEADERS:
                raise ValueError(
                    f"webhook.headers: {key!r} is set by meshwatch itself: remove it"
                    " (use webhook.secret for signatures)"
                )
            if any(ch in value for ch in "\r\n\x00"):
                raise ValueError(f"webhook.headers: the value of {key!r} contains a line break")
        return headers


class WebhookReceiver:
    """POSTs alerts to one URL, keeping one HTTP client (and its connections) for its lifetime.

    Parameters
    ----------
    name
        The receiver's name in the configuration.
    settings
        URL, secret, timeout and extra headers.
    transport
        An httpx transport to use instead of the network (unit tests of pure logic).
    """

    def __init__(
        self,
        name: str,
        settings: WebhookSettings,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self._url = str(settings.url)
        self._secret = (
            settings.secret.get_secret_value().encode() if settings.secret is not None else None
        )
        self._closed = False
        import httpx

        self._client = httpx.Client(
            transport=transport,
            timeout=settings.timeout,
            follow_redirects=False,
            headers={
                **settings.headers,
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
            },
        )

    def notify(self, notification: Notification) -> None:
        """POST the notification's alerts: one body per alert, or one array for a group.

        Raises
        ------
        DeliveryError
            When a POST fails; ``retryable`` says whether trying again later may succeed.
        """
        if self._closed:
            raise DeliveryError(f"webhook receiver {self.name!r} is closed", retryable=True)
        bodies = self.bodies(notification)
        for n, body in enumerate(bodies, start=1):
            delivery = notification.id if len(bodies) == 1 else f"{notification.id}-{n}"
            self._post(body, delivery)

    @staticmethod
    def bodies(notification: Notification) -> list[bytes]:
        """The request bodies a notification makes, in the order they are sent.

        Examples
        --------
        >>> alert = {"id": "a1", "state": "firing"}
        >>> WebhookReceiver.bodies(Notification("hook", {}, [alert, alert]))
        [b'{"id":"a1","state":"firing"}', b'{"id":"a1","state":"firing"}']
        >>> WebhookReceiver.bodies(Notification("hook", {"site": "s"}, [alert]))
        [b'[{"id":"a1","state":"firing"}]']
        """
        if not notification.alerts:
            return []
        if notification.group:
            return [orjson.dumps([dict(alert) for alert in notification.alerts])]
        return [orjson.dumps(dict(alert)) for alert in notification.alerts]

    def _post(self, body: bytes, delivery: str) -> None:
        """Send one body; map the outcome to success or a `DeliveryError`."""
        headers = {"X-Meshwatch-Delivery": delivery}
        if self._secret is not None:
            headers["X-Meshwatch-Signature"] = sign(self._secret, body)
        where = f"webhook {self.name!r} ({_origin(self.settings.url)})"
        import httpx

        try:
            response = self._client.post(self._url, content=body, headers=headers)
        except httpx.TimeoutException:
            raise DeliveryError(
                f"{where}: no answer within {self.settings.timeout} s", retryable=True
            ) from None
        except httpx.TransportError as exc:
            raise DeliveryError(f"{where}: {type(exc).__name__}: {exc}", retryable=True) from None
        except RuntimeError as exc:  # the client was closed while this POST waited to start
            raise DeliveryError(f"{where}: {exc}", retryable=True) from None
        _check(response, where)

    def close(self) -> None:
        """Close the HTTP client and its connections; later calls do nothing."""
        self._closed = True
        self._client.close()

    def __repr__(self) -> str:
        return f"WebhookReceiver({self.name!r}, url={_origin(self.settings.url)!r})"


def _check(response: httpx.Response, where: str) -> None:
    """Return on 2xx; otherwise raise a `DeliveryError` saying whether to retry."""
    status = response.status_code
    if 200 <= status < 300:
        return
    said = response.text[:_BODY_QUOTE]
    if status in _RETRYABLE_4XX or status >= 500:
        raise DeliveryError(
            f"{where} answered {status}: {said!r}",
            retryable=True,
            retry_after=retry_after(response.headers.get("Retry-After"), time.time()),
        )
    if 300 <= status < 400:
        raise DeliveryError(
            f"{where} answered {status}, a redirect to {response.headers.get('Location')!r}:"
            " set webhook.url to the final address",
            retryable=False,
        )
    raise DeliveryError(f"{where} refused the alert with {status}: {said!r}", retryable=False)


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP date.

    Parameters
    ----------
    value
        The header, or None when absent.
    now
        The current Unix time, for the date form.

    Returns
    -------
    float or None
        Non-negative seconds, or None when the header is absent or unreadable.

    Examples
    --------
    >>> retry_after("120", now=0.0)
    120.0
    >>> retry_after("Thu, 01 Jan 1970 00:01:00 GMT", now=30.0)
    30.0
    >>> retry_after("soon", now=0.0) is None
    True
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - now)


def _origin(url: HttpUrl) -> str:
    """Scheme, host and port of the URL only: its user info, path and query may hold secrets."""
    return f"{url.scheme}://{url.host}:{url.port}"
