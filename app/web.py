"""The web server: the Gradio page and API mounted in FastAPI, behind two guards.

- Logins: names and passwords are checked against the hashed users (storage.users), then any
  plain-text `SPEECHSUM_USERS` entries. Failed logins are logged and counted per name (in the check)
  and per address (around the login route); past `SPEECHSUM_LOGIN_ATTEMPTS` in
  `SPEECHSUM_LOGIN_WINDOW_MIN`, that name or address gets "too many failed logins" until the window
  has passed.
- Upload size: a request whose declared length is over `SPEECHSUM_MAX_UPLOAD_MB` is refused before
  its body is read; a body that declares no length (chunked) is cut where it passes the limit.
"""

from __future__ import annotations

import hmac
import logging
import mimetypes

import gradio as gr
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse

from app.api import recording_token
from app.library import recording_audio_path
from app.ui import CSS, SEEK_JS, build
from storage import users
from storage.db import ensure_schema, session_scope
from storage.settings import Settings

log = logging.getLogger("speechsum.login")
SLACK_BYTES = 1 << 20  # a multipart body's headers and boundaries around the file


def logins_configured(settings: Settings) -> bool:
    """Whether the page asks for a login: hashed users in the database, or plain-text ones in the settings."""
    ensure_schema(settings.db_url)
    with session_scope(settings.db_url) as session:
        return bool(settings.logins or users.names(session))


def login_check(settings: Settings, limiter: users.Limiter):
    """Gradio's auth function: the hashed users, then plain-text entries; failures logged and limited per name."""

    def check(name: str, password: str) -> bool:
        if limiter.wait_s(f"name:{name}"):
            log.warning("login refused for %r: too many failed attempts", name)
            return False
        with session_scope(settings.db_url) as session:
            ok = users.check(session, name, password, settings.logins)
        if not ok:
            limiter.fail(f"name:{name}")
            log.warning("failed login for %r", name)
        return ok

    return check


class BodyCap:
    """ASGI middleware: a request body that declares no length is counted as it arrives; where it
    passes `limit` the client gets 413 at once and the app sees the client gone (the rest is never
    read)."""

    def __init__(self, app, limit: int, shown_mb: float):
        self.app, self.limit, self.shown_mb = app, limit, shown_mb

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or any(k == b"content-length" for k, _ in scope["headers"]):
            return await self.app(scope, receive, send)
        seen, started, cut = 0, False, False

        async def counted():
            nonlocal seen, cut
            if cut:
                return {"type": "http.disconnect"}
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                cut = True
                log.warning("cut a body that declared no length at %d bytes (limit %d)", seen, self.limit)
                if not started:
                    await JSONResponse({"detail": f"The file is over the {self.shown_mb:g} MB limit."},
                                       status_code=413)(scope, receive, send)
                return {"type": "http.disconnect"}
            return message

        async def sending(message):
            nonlocal started
            if not cut:  # after a cut, the 413 was the answer
                started = True
                await send(message)

        await self.app(scope, counted, sending)


def make_app(settings: Settings) -> FastAPI:
    limiter = users.Limiter(settings.login_attempts, settings.login_window_min * 60)
    app = FastAPI()

    @app.middleware("http")
    async def guard(request: Request, call_next):
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > settings.max_upload_bytes + SLACK_BYTES:
            log.warning("refused an upload of %s bytes declared (limit %d MB)", declared, settings.max_upload_mb)
            return JSONResponse({"detail": f"The file is over the {settings.max_upload_mb:g} MB limit."},
                                status_code=413)
        if request.method != "POST" or not request.url.path.rstrip("/").endswith("/login"):
            return await call_next(request)
        address = f"address:{request.client.host if request.client else 'unknown'}"
        wait = limiter.wait_s(address)
        if wait:
            log.warning("login refused from %s: too many failed attempts", address)
            return JSONResponse({"detail": f"Too many failed logins; try again in {wait} s."}, status_code=429)
        response = await call_next(request)
        if response.status_code >= 400:
            limiter.fail(address)
            log.warning("failed login from %s", address)
        return response

    @app.get("/recording/{recording_id}")
    def recording_audio(recording_id: int, token: str = ""):
        """A recording's audio for the page's player, with Range requests for seeking; the token
        (app.api.recording_token) is what the page got with the summary."""
        path = recording_audio_path(settings, recording_id)
        if path is None or not hmac.compare_digest(token, recording_token(settings, recording_id)):
            return JSONResponse({"detail": "No such recording."}, status_code=404)
        return FileResponse(path, media_type=mimetypes.guess_type(path)[0] or "application/octet-stream")

    app.add_middleware(BodyCap, limit=settings.max_upload_bytes + SLACK_BYTES, shown_mb=settings.max_upload_mb)
    page = build(settings).queue(default_concurrency_limit=4)
    return gr.mount_gradio_app(
        app, page, path="/", auth=login_check(settings, limiter) if logins_configured(settings) else None,
        auth_message="Sign in to speechsum: your votes and history are kept under your name.",
        max_file_size=settings.max_upload_bytes, show_error=True, css=CSS, head=SEEK_JS)


def serve(settings: Settings) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ensure_schema(settings.db_url)
    uvicorn.run(make_app(settings), host=settings.host, port=settings.port, log_level="warning",
                timeout_graceful_shutdown=3)  # the page keeps event streams open: a stop does not wait on them
