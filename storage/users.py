"""Logins: users with bcrypt-hashed passwords in the database, and a limit on failed attempts.

`speechsum users add|remove|list` manages them. Plain-text `SPEECHSUM_USERS` entries still work, with
a warning in the log once per process. Failed logins are logged and counted per name and per
address; past `attempts` failures within `window_s`, that name or address is refused until the
window has passed.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections import defaultdict, deque

import bcrypt
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from storage.schema import User

log = logging.getLogger("speechsum.login")
ROUNDS = 12  # bcrypt's cost: about a quarter of a second a check on this CPU


class UserError(ValueError):
    """A user that cannot be added or removed; the message is meant for the operator."""


def add(session: Session, name: str, password: str) -> None:
    if not name.strip() or ":" in name or "," in name:
        raise UserError(f"a user name is not empty and has no ':' or ',', not {name!r}")
    if len(password) < 8:
        raise UserError("a password has at least 8 characters")
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=ROUNDS)).decode()
    row = session.scalar(select(User).where(User.name == name))
    if row is None:
        session.add(User(name=name, password_hash=hashed))
    else:
        row.password_hash = hashed


def remove(session: Session, name: str) -> None:
    if session.execute(delete(User).where(User.name == name)).rowcount == 0:
        raise UserError(f"no user {name!r}")


def names(session: Session) -> list[str]:
    return list(session.scalars(select(User.name).order_by(User.name)))


def check(session: Session, name: str, password: str, plain: list[tuple[str, str]]) -> bool:
    """Whether `password` is `name`'s: the stored hash first, else a plain-text settings entry."""
    hashed = session.scalar(select(User.password_hash).where(User.name == name))
    if hashed is not None:
        return bcrypt.checkpw(password.encode(), hashed.encode())
    for user, secret in plain:
        if user == name:
            _warn_plain_once()
            return hmac.compare_digest(password.encode(), secret.encode())
    return False


_warned = threading.Event()


def _warn_plain_once() -> None:
    if not _warned.is_set():
        _warned.set()
        log.warning("plain-text passwords from SPEECHSUM_USERS are in use: add hashed ones with "
                    "`speechsum users add NAME` and empty the setting")


class Limiter:
    """Failed attempts per key (a name, an address) in a sliding window; thread-safe, in memory."""

    def __init__(self, attempts: int = 5, window_s: float = 300.0):
        self.attempts, self.window_s = attempts, window_s
        self._failed: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def wait_s(self, key: str) -> int:
        """Seconds until `key` may try again (0: now)."""
        with self._lock:
            times = self._failed[key]
            while times and time.monotonic() - times[0] > self.window_s:
                times.popleft()
            return int(self.window_s - (time.monotonic() - times[0])) + 1 if len(times) >= self.attempts else 0

    def fail(self, key: str) -> None:
        with self._lock:
            self._failed[key].append(time.monotonic())
