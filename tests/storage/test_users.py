"""Users with bcrypt-hashed passwords (SQLite and PostgreSQL), plain-text entries with a warning, the limiter."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from storage import schema, users
from storage.db import session_scope


def test_passwords_are_stored_as_bcrypt_hashes_and_checked(settings):
    with session_scope(settings.db_url) as session:
        users.add(session, "alice", "wonderland!")
    with session_scope(settings.db_url) as session:
        stored = session.scalar(select(schema.User.password_hash))
        assert stored.startswith("$2b$12$") and "wonderland" not in stored
        assert users.check(session, "alice", "wonderland!", []) and not users.check(session, "alice", "wrong", [])
        users.add(session, "alice", "another-one")  # a new password replaces the old
        assert users.check(session, "alice", "another-one", []) and users.names(session) == ["alice"]
        users.remove(session, "alice")
        with pytest.raises(users.UserError, match="no user 'alice'"):
            users.remove(session, "alice")
        with pytest.raises(users.UserError, match="at least 8"):
            users.add(session, "bob", "short")


def test_plain_text_entries_still_work_and_warn_once(settings, caplog):
    users._warned.clear()
    with caplog.at_level(logging.WARNING, "speechsum.login"), session_scope(settings.db_url) as session:
        assert users.check(session, "bob", "builder", [("bob", "builder")])
        assert not users.check(session, "bob", "other", [("bob", "builder")])
    assert caplog.text.count("plain-text passwords") == 1


def test_the_limiter_refuses_a_key_past_its_attempts_until_the_window_passes(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(users.time, "monotonic", lambda: now[0])
    limiter = users.Limiter(attempts=3, window_s=60)
    for _ in range(3):
        assert limiter.wait_s("name:alice") == 0
        limiter.fail("name:alice")
    assert 0 < limiter.wait_s("name:alice") <= 61 and limiter.wait_s("name:bob") == 0
    now[0] += 61
    assert limiter.wait_s("name:alice") == 0
