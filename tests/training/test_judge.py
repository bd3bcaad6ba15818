"""The judge's score parsing, and its OpenAI-compatible client against a local HTTP endpoint."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from training.judge import load_judge, parse_score


@pytest.mark.parametrize(("reply", "score"), [
    ("7", 7.0), ("Score: 8/10", 8.0), ("I'd say 6.5.", 6.5), ("42, no: 9", 9.0), ("no idea", None), ("", None),
])
def test_parse_score_takes_the_first_number_in_range(reply, score):
    assert parse_score(reply) == score


class _Endpoint(BaseHTTPRequestHandler):
    """Answers /v1/chat/completions the way an OpenAI-compatible server does, and keeps the requests."""

    requests: list[dict] = []

    def do_POST(self):  # noqa: N802 (the http.server name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append({"path": self.path, "auth": self.headers["Authorization"], "body": body})
        reply = json.dumps({"choices": [{"message": {"role": "assistant", "content": "Score: 7"}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


def test_openai_compatible_judge_sends_the_prompt_and_reads_the_score(monkeypatch, tmp_path):
    server = HTTPServer(("127.0.0.1", 0), _Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("SPEECHSUM_JUDGE_API_KEY", "k-123")
    try:
        judge = load_judge(f"http://127.0.0.1:{server.server_port}/v1#grader-7b", tmp_path)
        assert judge.score("What was decided?", "We chose rubber buttons.", "Rubber buttons.") == 7.0
    finally:
        server.shutdown()
    (sent,) = _Endpoint.requests
    assert sent["path"] == "/v1/chat/completions" and sent["auth"] == "Bearer k-123"
    assert sent["body"]["model"] == "grader-7b" and sent["body"]["temperature"] == 0
    prompt = sent["body"]["messages"][0]["content"]
    assert "What was decided?" in prompt and "We chose rubber buttons." in prompt and "Rubber buttons." in prompt
