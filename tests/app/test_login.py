"""The login check: hashed users first, then plain-text entries; a name past its failed attempts is refused."""

from __future__ import annotations

from app.web import login_check, logins_configured
from storage import users
from storage.db import session_scope


def test_a_name_past_its_failed_attempts_is_refused_even_with_its_password(settings):
    assert not logins_configured(settings)
    with session_scope(settings.db_url) as session:
        users.add(session, "carol", "correct-horse")
    assert logins_configured(settings)
    check = login_check(settings, users.Limiter(attempts=2, window_s=60))
    assert check("carol", "correct-horse")
    assert not check("carol", "wrong") and not check("carol", "wrong")
    assert not check("carol", "correct-horse")  # locked for the window
    assert not check("nobody", "x")
