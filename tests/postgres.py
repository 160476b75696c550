"""A throwaway PostgreSQL server for end-to-end tests: initdb + pg_ctl in a temporary directory.

Uses the Debian server package (`/usr/lib/postgresql/<version>/bin`; `scripts/test.sh` installs
it when missing) and the `psql` client. The server listens on 127.0.0.1 on a free port, with its
socket in the same temporary directory, so it never touches a system cluster. initdb refuses to
run as root, so as root every server command runs as the `postgres` system user (created by the
Debian package) through `runuser`.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

USER = "meltano"
PASSWORD = "meltano-test-password"  # a throwaway server on loopback


def _bin_dir() -> Path:
    def version(initdb: str) -> int:
        name = Path(initdb).parent.parent.name
        return int(name) if name.isdigit() else 0

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin: "
        "install them with `apt-get install -y postgresql` (scripts/test.sh does)"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One PostgreSQL cluster: `start()`, `psql(sql)`, `stop()` (also as a context manager)."""

    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.port = free_port()
        self.host = "127.0.0.1"
        self.user = USER
        self.password = PASSWORD
        self.root = Path(tempfile.mkdtemp(prefix="pg-test-"))
        self.data = self.root / "data"
        self._run_as: list[str] = []
        self._started = False
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise RuntimeError(
                    "running as root needs the 'postgres' system user (the Debian postgresql "
                    "package creates it)"
                ) from exc
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            self._run_as = ["runuser", "-u", "postgres", "--"]

    def _server_cmd(self, *args: str) -> None:
        result = subprocess.run(
            [*self._run_as, *args], capture_output=True, text=True, check=False, timeout=120
        )
        if result.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(
                f"{Path(args[0]).name} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}{tail}"
            )

    def start(self) -> PostgresServer:
        """initdb with a password-protected superuser, then start listening on loopback."""
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._run_as:
            entry = pwd.getpwnam("postgres")
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        self._server_cmd(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user,
            f"--pwfile={pwfile}", "--auth=scram-sha-256", "--encoding=UTF8", "--no-sync",
        )  # fmt: skip
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses={self.host} -c fsync=off "
            "-c full_page_writes=off -c synchronous_commit=off"
        )
        self._server_cmd(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip
        self._started = True
        return self

    def psql(self, sql: str, *, database: str = "postgres") -> str:
        """Run SQL through the psql client over TCP, as the test user; returns unaligned rows."""
        psql = self.bin / "psql"
        result = subprocess.run(
            [
                str(psql) if psql.exists() else "psql", "-X", "-q", "-A", "-t",
                "-v", "ON_ERROR_STOP=1", "-h", self.host, "-p", str(self.port),
                "-U", self.user, "-d", database, "-c", sql,
            ],
            capture_output=True, text=True, check=False, timeout=120,
            env={**os.environ, "PGPASSWORD": self.password, "PGCONNECT_TIMEOUT": "10"},
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}")
        return result.stdout

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its files."""
        try:
            if self._started:
                self._server_cmd(
                    str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"
                )
        finally:
            self._started = False
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
