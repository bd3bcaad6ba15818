"""What a client sees of an error: one line and an error id; no SQL, parameter or server path; ids in range."""

from __future__ import annotations

import logging
import re

import gradio as gr
import pytest
from sqlalchemy.exc import DataError

from app.api import shown_to_user, user_error
from storage.db import session_scope
from storage.history import MAX_ID, NotFound, owned_recording, owned_summary, safe_name
from tests.storage.conftest import postgres_server, postgres_url, settings  # noqa: F401 (fixtures: SQLite and PostgreSQL)


def test_an_unexpected_error_reaches_the_client_as_one_line_with_an_id_and_its_details_stay_in_the_log(caplog):
    sql = DataError("INSERT INTO recordings (original_name, stored_path) VALUES (%(name)s, %(path)s)",
                    {"name": "x" * 600, "path": "/var/lib/speechsum/audio/ab/abcd.wav"}, Exception("value too long"))
    with caplog.at_level(logging.ERROR, "speechsum.web"), pytest.raises(gr.Error) as raised:
        with shown_to_user():
            raise sql
    shown = raised.value.message
    ref = re.search(r"\(error ([0-9a-f]{8})\)", shown).group(1)
    assert "\n" not in shown and not re.search(r"INSERT|VALUES|/var/lib|xxxx|%\(", shown)
    assert ref in caplog.text and "INSERT INTO recordings" in caplog.text


def test_a_user_error_keeps_its_message_but_no_server_path():
    error = user_error("/home/speechsum/data/students/sft-1 was trained on other base weights")
    assert error.message.startswith("sft-1 was trained on other base weights (error ")
    assert "/home" not in error.message


@pytest.mark.parametrize("bad", [2**70, 0, -3, MAX_ID + 1])
def test_ids_out_of_range_are_not_found_before_any_sql(settings, bad):
    with session_scope(settings.db_url) as session:
        with pytest.raises(NotFound, match="was not found"):
            owned_summary(session, bad, "user:alice")
        with pytest.raises(NotFound, match="was not found"):
            owned_recording(session, bad, "user:alice")


def test_file_names_are_cut_to_a_safe_length_keeping_their_extension():
    assert safe_name("meeting.wav") == "meeting.wav"
    long = safe_name("a" * 600 + ".flac")
    assert len(long) == 200 and long.endswith(".flac")
