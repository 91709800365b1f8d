"""The email receiver: one plain-text message per notification, sent over SMTP with TLS.

What the message says (subject, body, headers) is composed in `alerts.receivers.emailtext`;
this module holds the settings and the delivery.

Each notification opens its own connection: connect (implicit TLS with ``ssl``), EHLO,
STARTTLS with a context that verifies the server's certificate (``starttls``, the default),
EHLO again, AUTH when a username is set, then the message. Outcomes: connection errors,
timeouts, a dropped connection and SMTP 4xx replies are retryable; 5xx replies (sender or
recipients refused, authentication failed with 535), an untrusted certificate and a server
without STARTTLS are not, and the error quotes the server's reply. When only some recipients
are refused, the others still get the message and the refusals are logged as a warning.

Settings
--------
Under ``alerts.receivers`` in the configuration::

    receivers:
      - name: oncall
        email:
          host: smtp.example
          port: 587                  # submission with STARTTLS (the default)
          sender: meshwatch@example  # the From address
          to: [oncall@example]
          username: meshwatch        # AUTH after STARTTLS; both or neither
          password: "..."
          timeout: 10.0              # seconds per SMTP step
          # ca_file: /etc/meshwatch/site-ca.pem   # an extra CA to trust (a site's own)

For implicit TLS (SMTPS) write ``ssl: true``: the port then defaults to 465 and ``starttls`` to
false. A username without TLS is refused, since the password would cross the network in clear.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from alerts.base import Notification
from alerts.errors import DeliveryError, RulesError
from alerts.receivers.emailtext import compose
from ingest.settings import existing_file

_logger = logging.getLogger("meshwatch.alerts")
# The standard ports (RFC 8314 §7.3 submissions over implicit TLS; RFC 6409 §3.1 submission).
_SMTPS_PORT = 465
_SUBMISSION_PORT = 587
_BOOL = TypeAdapter(bool)
# What to do when the server lacks an extension the settings need.
_UNSUPPORTED_HINT = {
    "STARTTLS": "if the server speaks implicit TLS, set email.ssl: true and its port",
    "AUTH": "if the server takes mail without a login, remove email.username and password",
}


def _address(value: str, key: str) -> str:
    """Check one mail address (a display name is allowed): an @ and no line breaks."""
    if any(ch in value for ch in "\r\n\x00") or "@" not in parseaddr(value)[1]:
        raise ValueError(f"email.{key}: {value!r} is not a mail address (e.g. oncall@example)")
    return value


class EmailSettings(BaseModel):
    """Settings of an email receiver: the SMTP server, TLS, credentials and addresses."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1)
    port: int = Field(_SUBMISSION_PORT, ge=1, le=65535)
    starttls: bool = True
    ssl: bool = False
    username: str | None = None
    password: SecretStr | None = None
    sender: str
    to: list[str] = Field(min_length=1)
    timeout: float = Field(10.0, gt=0)
    ca_file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _ssl_defaults(cls, data: Any) -> Any:
        """With ``ssl: true``, port and starttls not given default to 465 and false."""
        if not isinstance(data, Mapping) or "ssl" not in data:
            return data
        try:
            implicit = _BOOL.validate_python(data["ssl"])
        except ValidationError:
            return data  # the field validator reports it
        if not implicit:
            return data
        return {"port": _SMTPS_PORT, "starttls": False, **data}

    @field_validator("sender")
    @classmethod
    def _sender_is_an_address(cls, value: str) -> str:
        return _address(value, "sender")

    @field_validator("to")
    @classmethod
    def _recipients_are_addresses(cls, values: list[str]) -> list[str]:
        return [_address(value, "to") for value in values]

    _file_exists = field_validator("ca_file")(existing_file)

    @model_validator(mode="after")
    def _consistent(self) -> EmailSettings:
        if self.ssl and self.starttls:
            raise ValueError(
                "email.ssl and email.starttls are exclusive: ssl is implicit TLS (port 465),"
                " starttls upgrades a plain connection (port 587); set starttls: false"
                " to use ssl, or remove ssl"
            )
        if (self.username is None) != (self.password is None):
            raise ValueError("email.username and email.password go together: set both or neither")
        if self.username is not None and not (self.ssl or self.starttls):
            raise ValueError(
                "email.username is set but neither email.starttls nor email.ssl is: the password"
                " would cross the network in clear; enable starttls (port 587) or ssl (port 465)"
            )
        return self


class EmailReceiver:
    """Sends one message per notification through an SMTP server.

    Parameters
    ----------
    name
        The receiver's name in the configuration.
    settings
        Server, TLS, credentials and addresses.

    Raises
    ------
    RulesError
        If ``ca_file`` is not a PEM certificate.
    """

    def __init__(self, name: str, settings: EmailSettings) -> None:
        self.name = name
        self.settings = settings
        self._context = ssl.create_default_context()  # verifies certificate and host name
        if settings.ca_file is not None:
            try:
                self._context.load_verify_locations(cafile=settings.ca_file)
            except ssl.SSLError as exc:
                raise RulesError(
                    f"email receiver {name!r}: ca_file {str(settings.ca_file)!r} is not a PEM"
                    f" certificate ({exc}); point it at the CA certificate that signed the"
                    " server's"
                ) from None
        self._closed = False

    def notify(self, notification: Notification) -> None:
        """Send the notification as one message.

        Raises
        ------
        DeliveryError
            When the server cannot be reached or refuses; ``retryable`` says whether trying
            again later may succeed.
        """
        if self._closed:
            raise DeliveryError(f"email receiver {self.name!r} is closed", retryable=True)
        if not notification.alerts:
            return
        self._send(self.message(notification))

    def message(self, notification: Notification, *, now: float | None = None) -> EmailMessage:
        """The message a notification becomes (``now``: Unix time of its Date header)."""
        return compose(notification, self.settings.sender, self.settings.to, now=now)

    def _send(self, msg: EmailMessage) -> None:
        """Connect, secure, authenticate and send; map every failure to a `DeliveryError`."""
        s = self.settings
        where = f"email receiver {self.name!r} ({s.host}:{s.port})"
        step = "connect"
        smtp: smtplib.SMTP | None = None
        try:
            if s.ssl:
                smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=self._context)
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            step = "EHLO"
            smtp.ehlo()
            if s.starttls:
                step = "STARTTLS"
                smtp.starttls(context=self._context)
                smtp.ehlo()
            if s.username is not None and s.password is not None:
                step = "AUTH"
                smtp.login(s.username, s.password.get_secret_value())
            step = "sending"
            refused = smtp.send_message(msg, from_addr=s.sender, to_addrs=s.to)
            step = "QUIT"
        except smtplib.SMTPRecipientsRefused as exc:
            raise _refused(where, exc.recipients) from None
        except smtplib.SMTPResponseException as exc:
            reply = _reply(exc.smtp_code, exc.smtp_error)
            raise DeliveryError(
                f"{where}: the server answered {step} with {reply}",
                retryable=400 <= exc.smtp_code < 500,
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(
                f"{where}: {exc} ({_UNSUPPORTED_HINT.get(step, step)})", retryable=False
            ) from None
        except smtplib.SMTPServerDisconnected as exc:
            raise DeliveryError(
                f"{where}: connection closed during {step}: {exc}", retryable=True
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(
                f"{where}: the server's certificate is not trusted ({exc.verify_message});"
                " set email.ca_file to the CA that signed it",
                retryable=False,
            ) from None
        except smtplib.SMTPException as exc:
            # smtplib's own refusals without a reply code, e.g. no AUTH mechanism in common
            raise DeliveryError(f"{where}: {step} failed: {exc}", retryable=False) from None
        except TimeoutError:
            raise DeliveryError(
                f"{where}: no answer within {s.timeout} s during {step}", retryable=True
            ) from None
        except OSError as exc:
            raise DeliveryError(f"{where}: {step} failed: {exc}", retryable=True) from None
        finally:
            if smtp is not None:
                _close(smtp, polite=step == "QUIT")
        if refused:
            _logger.warning(
                "%s: delivered, but the server refused %s",
                where,
                "; ".join(f"{rcpt} ({_reply(*reply)})" for rcpt, reply in refused.items()),
            )

    def close(self) -> None:
        """Nothing stays open between notifications; later `notify` calls raise."""
        self._closed = True

    def __repr__(self) -> str:
        return f"EmailReceiver({self.name!r}, host={self.settings.host!r})"


def _close(smtp: smtplib.SMTP, *, polite: bool) -> None:
    """Say QUIT after a success (its answer no longer matters), then close the socket."""
    try:
        if polite:
            smtp.quit()
    except (smtplib.SMTPException, OSError):
        pass  # the message was accepted already; a lost QUIT changes nothing
    finally:
        smtp.close()


def _reply(code: int, text: bytes | str) -> str:
    """An SMTP reply as the server said it: ``535 5.7.8 Authentication failed``."""
    said = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {said}".strip()


def _refused(where: str, recipients: Mapping[str, tuple[int, bytes]]) -> DeliveryError:
    """Every recipient refused: retryable only when every refusal was temporary (4xx)."""
    replies = "; ".join(f"{rcpt}: {_reply(*reply)}" for rcpt, reply in recipients.items())
    temporary = all(400 <= code < 500 for code, _ in recipients.values())
    return DeliveryError(f"{where}: every recipient refused ({replies})", retryable=temporary)
