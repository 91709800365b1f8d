"""CSRF tokens: one random token per session, in every form, compared in constant time.

The session cookie is SameSite=strict already; the token is the second guard (OWASP's
synchronizer token pattern), for browsers that ignore SameSite and for forms posted from a
page of another origin on the same site.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import MutableMapping
from typing import Any

# 32 random bytes, base64url: 256 bits, as OWASP's cheat sheet recommends at least 128.
_TOKEN_BYTES = 32
_KEY = "csrf"

#: What a refused form says (docs/design.md §13).
REFUSED = "the form expired or was not sent by this console; reload the page"


def token(session: MutableMapping[str, Any]) -> str:
    """The session's token, made on first use."""
    value = session.get(_KEY)
    if not isinstance(value, str):
        value = secrets.token_urlsafe(_TOKEN_BYTES)
        session[_KEY] = value
    return value


def valid(session: MutableMapping[str, Any], sent: object) -> bool:
    """Whether a form's token is the session's.

    Examples
    --------
    >>> session = {}
    >>> valid(session, token(session)), valid(session, "forged"), valid({}, "")
    (True, False, False)
    """
    expected = session.get(_KEY)
    if not isinstance(expected, str) or not isinstance(sent, str) or not sent:
        return False
    return hmac.compare_digest(expected.encode(), sent.encode())
