"""Who may use the console: the users file, argon2 password checks, roles, login throttling.

The users file is a YAML list of ``{name, hash, role}`` (docs/design.md §13); the hash is
argon2id (argon2-cffi's defaults, RFC 9106's second recommended setting). A ``viewer`` only
reads; a ``maintainer`` also acknowledges, silences and gives feedback.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from meshwatch.errors import ConfigError

Role = Literal["viewer", "maintainer"]
ROLES: tuple[Role, ...] = ("viewer", "maintainer")
# Failed logins allowed per (user, address) within the window before answering 429.
MAX_FAILURES = 5
# The window (s): five minutes, the lockout period OWASP's authentication cheat sheet cites.
FAILURE_WINDOW = 300.0
# (user, address) pairs kept before stale ones are dropped: bounds what guessed names cost.
_MAX_KEPT = 10_000


@dataclass(frozen=True, slots=True)
class User:
    """One entry of the users file."""

    name: str
    hash: str
    role: Role

    def __post_init__(self) -> None:
        if not self.name or any(c.isspace() for c in self.name):
            raise ValueError(f"user name {self.name!r} must be non-empty, without spaces")
        if self.role not in ROLES:
            raise ValueError(f"role {self.role!r} of {self.name} is not viewer or maintainer")

    @property
    def may_act(self) -> bool:
        """Whether this user may acknowledge, silence and give feedback."""
        return self.role == "maintainer"


class Users:
    """The users of a users file, checked by password.

    Parameters
    ----------
    users
        The entries, by name.
    hasher
        argon2-cffi's hasher (its defaults unless a test makes hashing cheaper).
    """

    def __init__(self, users: dict[str, User], hasher: PasswordHasher | None = None) -> None:
        self.users = users
        self.hasher = hasher or PasswordHasher()
        # A hash to check against when the name is unknown, so both cases take as long.
        self._decoy = self.hasher.hash("meshwatch-decoy")

    @classmethod
    def load(cls, path: Path) -> Users:
        """Read a users file; `ConfigError` naming the file and the problem."""
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else []
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"users file {path} cannot be read: {exc}") from None
        return cls({u.name: u for u in _entries(document or [], path)})

    def check(self, name: str, password: str) -> User | None:
        """The user when the password is theirs, else None."""
        user = self.users.get(name)
        try:
            self.hasher.verify(user.hash if user else self._decoy, password)
        except (VerificationError, InvalidHashError):
            return None
        return user


def _entries(document: object, path: Path) -> list[User]:
    if not isinstance(document, list):
        raise ConfigError(f"users file {path} must be a YAML list of {{name, hash, role}}")
    users = []
    for n, entry in enumerate(document, 1):
        if not isinstance(entry, dict) or set(entry) != {"name", "hash", "role"}:
            raise ConfigError(f"users file {path}: entry {n} must have exactly name, hash, role")
        try:
            users.append(User(str(entry["name"]), str(entry["hash"]), entry["role"]))
        except ValueError as exc:
            raise ConfigError(f"users file {path}: entry {n}: {exc}") from None
    return users


def add_user(path: Path, name: str, password: str, role: Role) -> bool:
    """Write or replace `name`'s entry with an argon2 hash of `password`; True when new.

    The file is rewritten through a temporary file (mode 0600) and renamed, so a crash
    leaves the old file or the new one.
    """
    entry = User(name, PasswordHasher().hash(password), role)
    users = Users.load(path).users
    new = name not in users
    users[name] = entry
    document = [{"name": u.name, "hash": u.hash, "role": u.role} for u in users.values()]
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        yaml.safe_dump(document, f, sort_keys=False)
        f.flush()
        os.fsync(f.fileno())
    temporary.replace(path)
    return new


class LoginLimiter:
    """Counts failed logins per (user, address); more than `MAX_FAILURES` in the window: refused.

    Examples
    --------
    >>> limiter = LoginLimiter(clock=lambda: 0.0)
    >>> for _ in range(5):
    ...     limiter.failed("ana", "10.0.0.1")
    >>> limiter.blocked("ana", "10.0.0.1"), limiter.blocked("ana", "10.0.0.2")
    (True, False)
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def blocked(self, name: str, address: str) -> bool:
        """Whether this user may not try again from this address for now."""
        key = (name, address)
        return key in self._failures and len(self._recent(key)) >= MAX_FAILURES

    def failed(self, name: str, address: str) -> None:
        """Note a failed login (stale entries go first when many are kept)."""
        if len(self._failures) >= _MAX_KEPT:
            for key in list(self._failures):
                if not self._recent(key):
                    del self._failures[key]
        self._recent((name, address)).append(self._clock())

    def succeeded(self, name: str, address: str) -> None:
        """A good login clears the count."""
        self._failures.pop((name, address), None)

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        horizon = self._clock() - FAILURE_WINDOW
        while times and times[0] <= horizon:
            times.popleft()
        return times
