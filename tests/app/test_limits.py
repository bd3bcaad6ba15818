"""Limits at the real `speechsum serve`: hashed logins, failed logins limited per name and per address and
logged, and an upload whose declared length is over the limit refused before its body is sent."""

from __future__ import annotations

import socket
import urllib.error
import urllib.parse
import urllib.request

import pytest
from gradio_client import Client

from storage import users
from storage.db import session_scope, upgrade
from storage.settings import load_settings
from tests.conftest import running_app, speechsum_env

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("limits")
    env = speechsum_env(root) | {"SPEECHSUM_LOGIN_ATTEMPTS": "3", "SPEECHSUM_MAX_UPLOAD_MB": "1"}
    settings = load_settings(env)
    upgrade(settings.db_url)
    with session_scope(settings.db_url) as session:
        users.add(session, "carol", "correct-horse")
        users.add(session, "dave", "battery-staple")
    with running_app(env, log_path=root / "server.log") as url:
        yield url, root / "server.log"


def login(url: str, name: str, password: str) -> int:
    data = urllib.parse.urlencode({"username": name, "password": password}).encode()
    try:
        return urllib.request.urlopen(urllib.request.Request(url + "login", data=data), timeout=10).status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_hashed_user_logs_in_and_failures_are_limited_per_name_and_address_and_logged(server):
    url, log = server
    Client(url, auth=("dave", "battery-staple"), verbose=False)  # a hashed user gets in
    assert [login(url, "carol", "wrong") for _ in range(3)] == [400, 400, 400]
    assert login(url, "carol", "correct-horse") == 429  # the address is past its attempts now
    text = log.read_text()
    assert text.count("failed login for 'carol'") == 3 and "failed login from address:127.0.0.1" in text
    assert "login refused from address:127.0.0.1" in text


def test_an_upload_declaring_more_than_the_limit_is_refused_before_its_body(server):
    url, _ = server
    parts = urllib.parse.urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as conn:
        conn.sendall(b"POST /gradio_api/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10737418240\r\n"
                     b"Content-Type: multipart/form-data; boundary=b\r\n\r\n")  # 10 GB declared, no byte sent
        answer = b""
        while b"limit" not in answer and (chunk := conn.recv(4096)):  # headers and body may come apart
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413") and b"over the 1 MB limit" in answer
