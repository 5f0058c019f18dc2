"""A private PostgreSQL server for tests that stop and start it; fresh databases on it."""

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from prometheus_helpers import free_port
from waiting import wait_for


def _pg_bin() -> Path:
    """The folder of the newest installed PostgreSQL server binaries (Debian layout or PATH)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: p.parent.parent.name
    )
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb is None:
        if os.environ.get("CI"):
            raise RuntimeError("PostgreSQL server binaries (initdb) are missing on CI")
        pytest.skip("PostgreSQL server binaries (initdb) are not installed")
    return Path(initdb).parent


class PrivatePostgres:
    """initdb in a temp folder and a server on a free loopback port that tests may stop."""

    def __init__(self) -> None:
        self.bin = _pg_bin()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="fraud-pg-"))
        self.data = self.dir / "data"
        # The server refuses to run as root; the Debian package's user owns it then.
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.dir, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.admin_url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.running = False

    def _run(self, tool: str, *args: str) -> None:
        cmd = [*self._as, str(self.bin / tool), *args]
        subprocess.run(cmd, check=True, capture_output=True, cwd=self.dir)

    def start(self) -> None:
        """Start the server (if stopped) and wait until it accepts connections."""
        if self.running:
            return
        options = f"-p {self.port} -h 127.0.0.1 -k {self.dir} -F"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.dir / "log"),
            "-w",
            "start",
        )
        wait_for(self._accepts, timeout=30, what="private PostgreSQL accepting connections")
        self.running = True

    def _accepts(self) -> bool:
        try:
            psycopg.connect(self.admin_url, connect_timeout=1).close()
        except psycopg.OperationalError:
            return False
        return True

    def stop(self) -> None:
        """Stop it the way an outage would: at once, cutting every connection."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        self.running = False

    def remove(self) -> None:
        """Stop if running and delete its folder."""
        subprocess.run(
            [
                *self._as,
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.dir, ignore_errors=True)

    @contextmanager
    def database(self) -> Iterator[str]:
        """A new empty database, as a SQLAlchemy URL; dropped afterwards."""
        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"
        finally:
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
