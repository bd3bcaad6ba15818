"""Limits at the real `speechsum serve`: hashed logins, failed logins limited per name and per address and
logged, an upload whose declared length is over the limit refused before its body is sent, and a
body that declares no length cut at the limit."""

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
    env = speechsum_env(root) | {"SPEECHSUM_LOGIN_ATTEMPTS": "3", "SPEECHSUM_MAX_UPLOAD_MB": "1",
                                 "GRADIO_TEMP_DIR": str(root / "gradio")}
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
        answer = _answer(conn)
    assert answer.startswith(b"HTTP/1.1 413") and b"over the 1 MB limit" in answer


def _answer(conn: socket.socket) -> bytes:
    """The server's whole answer: its headers, then as many body bytes as they declare."""
    answer = b""
    while chunk := conn.recv(4096):  # headers and body may come apart
        answer += chunk
        head, sep, body = answer.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
                       if line.startswith(b"content-length:")), None)
        if sep and length is not None and len(body) >= length:
            break
    return answer


def test_a_body_without_a_declared_length_is_cut_at_the_limit_and_leaves_no_file(server):
    """A chunked body (no Content-Length) of 4 MB against a 1 MB limit: answered 413 while it is
    still being sent, and nothing of it stays in Gradio's upload folder. (Gradio's upload route
    also cuts a file part at `max_file_size` itself, after the login check.)"""
    route = "/gradio_api/queue/join"
    url, log = server
    parts = urllib.parse.urlsplit(url)
    head = b'--b\r\nContent-Disposition: form-data; name="files"; filename="big.wav"\r\n\r\n'
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        conn.sendall(f"POST {route} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n".encode()
                     + b"Content-Type: multipart/form-data; boundary=b\r\n\r\n" + b"%x\r\n%s\r\n" % (len(head), head))
        chunk = b"x" * 65536
        try:
            for _ in range(64):
                conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:  # the server may close the connection once it has answered
            pass
        answer = _answer(conn)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    left = [p for p in (log.parent / "gradio").rglob("*") if p.is_file() and p.stat().st_size > 100_000]
    assert not left, left
