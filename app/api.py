"""Named API endpoints for `gradio_client`: every action of the page, with plain JSON in and out.

Who is asking decides whose recordings and votes these are (see `owner`). The endpoints are thin
shells over app.pipeline, like the page and the CLI.
"""

from __future__ import annotations

import atexit
import hmac
import logging
import re
import secrets
import shutil
import tempfile
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path

import gradio as gr
from gradio import FileData
from gradio.utils import get_upload_folder

from app import exports
from app.library import delete_recording, history, recording_file, rename_speaker, vote_ab, vote_thumb
from app.pipeline import USER_ERRORS, Result, load_result
from app.worker import compare_upload, summarize_upload
from models.asr import NoSpeechError
from storage.audio import AudioError
from storage.settings import Settings

log = logging.getLogger("speechsum.web")


SERVER_PATH = re.compile(r"(?:/[\w.@+-]+){2,}/?")


def user_error(message: str) -> gr.Error:
    """An expected error (bad input, a missing item): one line with an error id in the page, the same
    line under that id in the server log, no traceback (those are for our own bugs). A server path in
    the message reaches the client as its last part only."""
    ref = uuid.uuid4().hex[:8]
    log.warning("refused [%s]: %s", ref, message)
    shown = SERVER_PATH.sub(lambda m: Path(m.group(0)).name or "…", " ".join(message.split()))
    return gr.Error(f"{shown} (error {ref})", print_exception=False)


MODELS = "models"


def web_secret(settings: Settings) -> str:
    """The key that encrypts the browser id in local storage and signs recording links; kept so
    both survive a restart."""
    return _secret_at(settings.data_dir / "web-secret")


@cache
def _secret_at(path: Path) -> str:
    """Read once per process: every summary shown, and every range request of its player, signs with it."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(16))
        path.chmod(0o600)
    return path.read_text().strip()


def recording_token(settings: Settings, recording_id: int) -> str:
    return hmac.new(web_secret(settings).encode(), f"recording:{recording_id}".encode(), "sha256").hexdigest()[:32]


def recording_url(settings: Settings, recording_id: int) -> str:
    """A link to one recording's audio, signed for the page that shows its summary (relative, so it
    works under any root path)."""
    return f"recording/{recording_id}?token={recording_token(settings, recording_id)}"


def model_slots(settings: Settings) -> dict:
    """How many model requests the web process serves at once. With workers, each request only
    follows its job, and the workers' fair queue decides the order: as many as the queue holds.
    Without workers the web process runs the models itself: one at a time, as two at once only
    make both slower on a small CPU."""
    return {"concurrency_id": MODELS, "concurrency_limit": settings.queue_max if settings.has_workers else 1}


_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
# What an A/B comparison pits against what.
PAIRS = {"samples": ("cascade", "cascade"), "student-vs-cascade": ("student", "cascade")}


def systems_of(pair: str) -> tuple[str, str]:
    if pair not in PAIRS:
        raise user_error(f"unknown pair {pair!r}; choose one of {', '.join(PAIRS)}")
    return PAIRS[pair]


def owner(request: gr.Request | None, browser_id: str | None = None, client_id: str | None = None) -> str:
    """The identity that owns uploads and votes: a logged-in user, else this browser, else this
    API client (its own id, or its session), so that history and votes stay with one person."""
    username = getattr(request, "username", None)
    if username:
        return f"user:{username}"
    for prefix, given in (("browser", browser_id), ("client", client_id)):
        if given:
            if not _CLIENT_ID.fullmatch(given):
                raise user_error("a client id is 8 to 64 letters, digits, '-' or '_'")
            return f"{prefix}:{given}"
    return f"session:{getattr(request, 'session_hash', None) or 'anonymous'}"


@contextmanager
def shown_to_user() -> Iterator[None]:
    """Turns our user-facing errors into a message in the page (or the client's exception); any other
    error reaches the client as one line with an error id, and the server log holds its details (the
    SQL, its parameters, the paths) under that id."""
    try:
        yield
    except gr.Error:
        raise
    except USER_ERRORS as exc:
        raise user_error(str(exc)) from exc
    except Exception:
        ref = uuid.uuid4().hex[:8]
        log.exception("error [%s] while serving a request", ref)
        raise gr.Error(f"Something went wrong on the server (error {ref}); the operator can look it up in the "
                       "server log.", print_exception=False) from None


def audio_path(audio: str | dict | None) -> str:
    """The file behind an upload: Gradio's temporary copy, or the store's copy once that was deleted."""
    if not audio:
        raise user_error("Upload or record a recording first.")
    path = audio if isinstance(audio, str) else audio["path"]
    return path if Path(path).exists() else _STORED.get(path, path)


_STORED: OrderedDict[str, str] = OrderedDict()  # a deleted temporary upload -> the store's copy of it
_STORED_MAX = 10_000


@contextmanager
def upload_used(settings: Settings, path: str, who: str) -> Iterator[Callable[[Result], None]]:
    """Deletes Gradio's temporary copy of an upload as soon as the file is refused (bad audio, no
    speech) or stored (the request calls the yielded function with its result). The page may send
    the same upload again (another question, an A/B pair): that reads the store's copy. A file
    outside Gradio's upload folder (a stored recording, a CLI path) is never touched."""
    stored: list[Result] = []
    try:
        yield stored.append
    except (AudioError, NoSpeechError):
        _discard(path)
        raise
    if stored and _discard(path):
        _STORED[path], _ = recording_file(settings, stored[0].recording_id, who)
        while len(_STORED) > _STORED_MAX:
            _STORED.popitem(last=False)


def _discard(path: str) -> bool:
    folder, file = Path(get_upload_folder()).resolve(), Path(path).resolve()
    if folder not in file.parents:
        return False
    file.unlink(missing_ok=True)
    if file.parent != folder:
        with suppress(OSError):  # not empty (another upload of the same content): it stays
            file.parent.rmdir()  # Gradio keeps each upload in a folder of its own
    return True


def original_name(audio: str | dict) -> str:
    if isinstance(audio, dict) and audio.get("orig_name"):
        return audio["orig_name"]
    return Path(audio if isinstance(audio, str) else audio["path"]).name  # the upload's name, not the store's


@cache
def _exports_dir() -> Path:
    """This process's own folder for downloads: in the temp dir, where Gradio may serve files from;
    removed when the process exits."""
    folder = Path(tempfile.mkdtemp(prefix="speechsum-exports-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def export_file(result: Result, fmt: str) -> Path:
    return exports.write(result, fmt, _exports_dir())


def register(settings: Settings) -> None:
    """Adds the endpoints to the Blocks being built (call inside `with gr.Blocks()`)."""

    def summarize(audio: FileData, query: str = "", client_id: str = "", system: str = "cascade",
                  request: gr.Request = None) -> dict:
        """Transcribes and summarizes a recording (system: cascade or student); answers `query` if given."""
        who, path = owner(request, client_id=client_id), audio_path(audio)
        with shown_to_user(), upload_used(settings, path, who) as stored:  # made by a worker, as from the page
            result = summarize_upload(settings, path, None, query=query or None, system=system,
                                      original_name=original_name(audio), uploader=who)
            stored(result)
        return result.as_dict()

    def compare(audio: FileData, query: str = "", client_id: str = "", pair: str = "samples",
                request: gr.Request = None) -> dict:
        """Two candidate summaries of a recording, as `left` and `right`, for an A/B vote; `pair` is
        "samples" (two cascade samples) or "student-vs-cascade"."""
        who, path = owner(request, client_id=client_id), audio_path(audio)
        with shown_to_user(), upload_used(settings, path, who) as stored:
            left, right = compare_upload(settings, path, None, query=query or None, systems=systems_of(pair),
                                         original_name=original_name(audio), uploader=who)
            stored(left)
        return {"left": left.as_dict(), "right": right.as_dict()}

    def thumb(summary_id: int, value: int, client_id: str = "", request: gr.Request = None) -> dict:
        """Thumbs up (1) or down (-1) on a summary; voting again replaces the earlier vote."""
        with shown_to_user():
            vote_thumb(settings, summary_id, owner(request, client_id=client_id), value)
        return {"summary_id": summary_id, "value": value}

    def ab_vote(left_id: int, right_id: int, choice: str, client_id: str = "", request: gr.Request = None) -> dict:
        """Which of two summaries, shown left and right, is better: left, right, tie or both_bad."""
        with shown_to_user():
            vote_ab(settings, left_id, right_id, owner(request, client_id=client_id), choice)
        return {"left_id": left_id, "right_id": right_id, "choice": choice}

    def search(text: str = "", client_id: str = "", request: gr.Request = None) -> list[dict]:
        """Your summaries, newest first, whose file name, question, summary or transcript contains `text`."""
        with shown_to_user():
            return [item.as_dict() for item in history(settings, owner(request, client_id=client_id), text)]

    def summary(summary_id: int, client_id: str = "", request: gr.Request = None) -> dict:
        """One of your summaries with its transcript, as `summarize` returned it."""
        with shown_to_user():
            return load_result(settings, summary_id, owner(request, client_id=client_id)).as_dict()

    def export(summary_id: int, fmt: str = "srt", client_id: str = "", request: gr.Request = None) -> str:
        """A summary and its transcript as txt, md, srt or json text."""
        if fmt not in exports.FORMATS:
            raise user_error(f"unknown format {fmt!r}; choose one of {', '.join(exports.FORMATS)}")
        with shown_to_user():
            return exports.RENDERERS[fmt](load_result(settings, summary_id, owner(request, client_id=client_id)))

    def speaker(summary_id: int, label: str, name: str = "", client_id: str = "", request: gr.Request = None) -> dict:
        """Names a speaker ("Speaker 2") of the recording behind one of your summaries (an empty name
        restores the label); returns the summary with the names applied."""
        with shown_to_user():
            return rename_speaker(settings, summary_id, owner(request, client_id=client_id), label, name).as_dict()

    for fn in (summarize, compare):
        gr.api(fn, api_name=fn.__name__, **model_slots(settings))
    def delete(recording_id: int, client_id: str = "", request: gr.Request = None) -> dict:
        """Deletes one of your recordings and all that was made from it: the audio file, the transcript,
        the summaries, the speaker names and the votes on them."""
        with shown_to_user():
            said = delete_recording(settings, recording_id, owner(request, client_id=client_id))
        return {"recording_id": recording_id, "message": said}

    for fn in (thumb, ab_vote, search, summary, export, speaker, delete):
        gr.api(fn, api_name=fn.__name__, concurrency_limit=None)
