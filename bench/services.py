"""Throwaway servers for the benchmarks and the tests: a PostgreSQL cluster, a Redis, and the real
`speechsum serve`. Each is a context manager that starts the server in a temp dir and removes it."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SPEECHSUM = str(Path(sys.executable).with_name("speechsum"))


class ServiceError(RuntimeError):
    """A server that is not installed or did not start; the message says which and how to get it."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bindir() -> Path:
    found = shutil.which("initdb") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))), None)
    if not found:
        raise ServiceError("PostgreSQL is not installed (apt-get install postgresql); .ci/run installs it")
    return Path(found).resolve().parent


@contextmanager
def postgres_server() -> Iterator[tuple[str, int]]:
    """A cluster on a Unix socket only; yields (socket dir, port)."""
    bindir = _pg_bindir()
    root = Path(tempfile.mkdtemp(prefix="speechsum-pg-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(root, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", free_port()
    run = lambda *cmd: subprocess.run([*as_postgres, *cmd], check=True, capture_output=True)  # noqa: E731
    run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    options = f"-k {root} -c listen_addresses='' -p {port} -c fsync=off"
    run(str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-l", str(root / "log"), "start")
    try:
        yield str(root), port
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def new_database(server: tuple[str, int]) -> str:
    """A fresh, empty database on the cluster; returns its SQLAlchemy URL."""
    import psycopg

    host, port = server
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(host=host, port=port, user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"postgresql+psycopg://postgres@/{name}?host={host}&port={port}"


class RedisServer:
    """A Redis on a free port in a temp dir; `persistent` keeps an append-only file, as compose's does,
    so a restart keeps the queued messages."""

    def __init__(self, persistent: bool = False):
        self.server = shutil.which("redis-server")
        if not self.server:
            raise ServiceError("redis-server is not installed (apt-get install redis-server); .ci/run installs it")
        self.port, self.folder, self.persistent = free_port(), tempfile.mkdtemp(prefix="speechsum-redis-"), persistent
        self.url, self.proc = f"redis://127.0.0.1:{self.port}/0", None

    def start(self) -> None:
        import redis

        keep = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else ["--appendonly", "no"]
        self.proc = subprocess.Popen([self.server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      *keep, "--dir", self.folder], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                redis.Redis(port=self.port).ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise ServiceError("redis-server did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()


@contextmanager
def redis_server(persistent: bool = False) -> Iterator[RedisServer]:
    server = RedisServer(persistent)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.folder, ignore_errors=True)


def restart_postgres(server: tuple[str, int]) -> None:
    """A fast restart of the cluster `postgres_server` made: every connection is cut."""
    root = Path(server[0])
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*as_postgres, str(_pg_bindir() / "pg_ctl"), "-D", str(root / "data"), "-m", "fast", "-w",
                    "-l", str(root / "log"), "restart"], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)  # the server keeps any pipe it is given open: none


@contextmanager
def running_app(env: dict[str, str], timeout_s: float = 120, log_path: Path | None = None) -> Iterator[str]:
    """The real `speechsum serve` in a subprocess on a free port; yields its URL (its output goes to
    `log_path` when given)."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | env
    with (open(log_path, "w+b") if log_path else tempfile.TemporaryFile()) as log:
        proc = subprocess.Popen([SPEECHSUM, "serve", "--port", str(port)], env=full_env, stdout=log, stderr=log)
        url = f"http://127.0.0.1:{port}/"
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise ServiceError(f"speechsum serve did not come up:\n{log.read().decode()[-3000:]}")
                try:
                    urllib.request.urlopen(url, timeout=2)
                    break
                except OSError:
                    time.sleep(0.5)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=30)
