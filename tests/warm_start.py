"""The programs the tests run (the target, Meltano), forked from a process that has loaded them.

Hundreds of tests start the target, and the Meltano tests run `meltano` a hundred times or more.
A new Python process spends ~0.9 s of CPU loading the target (the Singer SDK above all) and ~2 s
loading Meltano before it does anything; on 2 cores that was most of the test command's time.
So each pytest process starts, for each program, one process that loads it and then waits; for
a run it forks a child. The child is a real process of its own (its own stdin, stdout and stderr
pipes, working directory, environment, umask, arguments, exit status and signals) and runs what
the interpreter would run: the module as `python -m` runs it, or the console script as a script
(`runpy` either way). Only the loading is shared: nothing runs before the fork but imports.

A run that needs what only a new interpreter gives (a `preexec_fn`, `PYTHON*` variables other
than the loaded process's) starts a new interpreter instead. One thing the children share is
the loaded process's hash seed (set and dict order of strings), one per pytest worker.

Protocol, over one Unix socket connection per run: the test sends what to run, its arguments,
directory, environment and umask as JSON with its three pipe ends (SCM_RIGHTS); the server
answers the child's pid, then, when the child has ended, its exit status as subprocess reports
it (-N: signal N). This file is also the server (`python warm_start.py SOCKET LIFELINE MODULE`),
run by the program's own interpreter, so it uses the standard library only.
"""

from __future__ import annotations

import array
import atexit
import contextlib
import importlib
import json
import os
import runpy
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

TARGET_MODULE = "target_amazon_dsp_conversions"
_MAX_REQUEST = 1 << 20


def run_target(
    args: list[str],
    *,
    input: str,
    cwd: Path,
    env: dict[str, str],
    timeout: float,
    preexec_fn: Callable[[], None] | None = None,
    module: str = TARGET_MODULE,
) -> subprocess.CompletedProcess[str]:
    """`python -m MODULE ARGS` as `subprocess.run(..., text=True, capture_output=True)` runs it."""
    command = [sys.executable, "-m", module, *args]
    if preexec_fn is None:  # a preexec_fn needs a new interpreter: no server is started for it
        server = _server(sys.executable, "target_amazon_dsp_conversions.cli", os.environ)
        if not server.changes_interpreter(env):
            return server.run(command, {"module": module, "args": args}, input, cwd, env, timeout)
    return subprocess.run(
        command, input=input, capture_output=True, text=True, cwd=cwd, env=env,
        timeout=timeout, check=False, preexec_fn=preexec_fn,
    )  # fmt: skip


def run_meltano(
    meltano: Path, args: list[str], *, cwd: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """`meltano ARGS` (its console script, stdin empty) as `subprocess.run` runs it."""
    command = [str(meltano), *args]
    python = str(meltano.parent / "python")
    server = _server(python, "meltano.cli", env)
    if server.changes_interpreter(env):
        return subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=cwd,
            env=env, timeout=timeout, check=False,
        )  # fmt: skip
    return server.run(command, {"script": str(meltano), "args": args}, "", cwd, env, timeout)


# --------------------------------------------------------------------------- the test's side
class _Server:
    """A process of `python` that loaded `preload`, started on first use."""

    def __init__(self, python: str, preload: str, env: Mapping[str, str]) -> None:
        self.interpreter = _interpreter_settings(env)
        self.address = os.path.join(tempfile.mkdtemp(prefix="warm-start-"), "socket")
        lifeline_read, self._lifeline = os.pipe()  # the server ends when this pytest process does
        self.process = subprocess.Popen(
            [python, __file__, self.address, str(lifeline_read), preload],
            cwd=Path(__file__).resolve().parent.parent, env=dict(env), pass_fds=(lifeline_read,),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        )  # fmt: skip
        os.close(lifeline_read)
        assert self.process.stdout is not None
        ready = self.process.stdout.readline()
        if ready != b"ready\n":
            raise RuntimeError(f"the fork server for {preload} did not start: {ready!r}")
        atexit.register(self.close)

    def close(self) -> None:
        os.close(self._lifeline)
        self.process.wait(timeout=30)
        shutil.rmtree(os.path.dirname(self.address), ignore_errors=True)

    def changes_interpreter(self, env: Mapping[str, str]) -> bool:
        """The run sets the interpreter otherwise than the loaded process was set."""
        return _interpreter_settings(env) != self.interpreter

    def run(
        self,
        command: list[str],
        what: dict[str, Any],
        input: str,
        cwd: Path,
        env: dict[str, str],
        timeout: float,
    ) -> subprocess.CompletedProcess[str]:
        deadline = time.monotonic() + timeout
        request = json.dumps({**what, "cwd": str(cwd), "env": env, "umask": _umask()}).encode()
        stdin_read, stdin_write = os.pipe()
        stdout_read, stdout_write = os.pipe()
        stderr_read, stderr_write = os.pipe()
        outputs: dict[int, bytes] = {}

        def feed() -> None:
            with contextlib.suppress(BrokenPipeError), open(stdin_write, "wb") as stdin:
                stdin.write(input.encode())  # a program that stops reading: as subprocess.run

        def drain(fd: int) -> None:
            with open(fd, "rb") as stream:
                outputs[fd] = stream.read()

        # The threads own the test's pipe ends: they close them when the child has.
        threads = [
            threading.Thread(target=feed, daemon=True),
            threading.Thread(target=drain, args=(stdout_read,), daemon=True),
            threading.Thread(target=drain, args=(stderr_read,), daemon=True),
        ]
        for thread in threads:
            thread.start()
        pid = 0
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            try:
                connection.settimeout(timeout)
                try:
                    connection.connect(self.address)
                    fds = array.array("i", [stdin_read, stdout_write, stderr_write])
                    connection.sendmsg([request], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
                    connection.shutdown(socket.SHUT_WR)
                finally:
                    for fd in (stdin_read, stdout_write, stderr_write):
                        os.close(fd)
                answers = connection.makefile("rb")
                pid = int(answers.readline())
                connection.settimeout(max(deadline - time.monotonic(), 0.01))
                status = int(answers.readline())
                for thread in threads:  # a grandchild may still hold stdout or stderr
                    thread.join(max(deadline - time.monotonic(), 0))
                if any(thread.is_alive() for thread in threads):
                    raise TimeoutError
            except TimeoutError:
                _kill(pid)
                raise subprocess.TimeoutExpired(command, timeout) from None
            except BaseException:
                _kill(pid)  # as subprocess.run does: nothing goes on running after the test
                raise
        stdout, stderr = (_text(outputs.get(fd, b"")) for fd in (stdout_read, stderr_read))
        return subprocess.CompletedProcess(command, status, stdout, stderr)


_servers: dict[tuple[str, str], _Server] = {}
_servers_lock = threading.Lock()


def _server(python: str, preload: str, env: Mapping[str, str]) -> _Server:
    """The one server of this pytest process for `python` and `preload`."""
    with _servers_lock:
        server = _servers.get((python, preload))
        if server is None or server.process.poll() is not None:
            server = _servers[(python, preload)] = _Server(python, preload, env)
        return server


def _kill(pid: int) -> None:
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _umask() -> int:
    """This process's umask, as a child inherits it (read, not set and reset: threads run)."""
    with contextlib.suppress(OSError, StopIteration):
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith("Umask:"))
        return int(line.split()[1], 8)
    with _servers_lock:
        umask = os.umask(0o022)
        os.umask(umask)
        return umask


def _interpreter_settings(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith("PYTHON")}


def _text(data: bytes) -> str:
    """As subprocess's text mode reads a pipe: decoded, universal newlines."""
    return data.decode().replace("\r\n", "\n").replace("\r", "\n")


# --------------------------------------------------------------------------- the server's side
def _serve(address: str, lifeline: int, preload: str) -> dict[str, Any]:
    """Fork a child for each request; return (in the child only) the request it is to run."""
    importlib.import_module(preload)
    # A fork copies only the thread that forks: loading must not have started another.
    assert threading.active_count() == 1, threading.enumerate()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(64)
    wakeup_read, wakeup_write = os.pipe()
    os.set_blocking(wakeup_write, False)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    signal.set_wakeup_fd(wakeup_write)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "request")
    selector.register(wakeup_read, selectors.EVENT_READ, "ended")
    selector.register(lifeline, selectors.EVENT_READ, "lifeline")
    children: dict[int, socket.socket] = {}
    sys.stdout.buffer.write(b"ready\n")
    sys.stdout.buffer.flush()
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)

    while True:
        for key, _ in selector.select():
            if key.data == "lifeline":
                for pid in children:
                    os.kill(pid, signal.SIGKILL)
                sys.exit(0)
            if key.data == "ended":
                os.read(wakeup_read, 4096)
                _report_ended(children)
                continue
            connection, _ = listener.accept()
            try:
                request, fds = _receive(connection)
            except (OSError, ValueError):  # the test went away mid-request
                connection.close()
                continue
            pid = os.fork()
            if pid == 0:  # the child: nothing of the server stays open
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                selector.close()
                for fd in (wakeup_read, wakeup_write, lifeline):
                    os.close(fd)
                for other in (listener, connection, *children.values()):
                    other.close()
                for target_fd, fd in enumerate(fds):
                    os.dup2(fd, target_fd)
                    os.close(fd)
                return request
            for fd in fds:
                os.close(fd)
            children[pid] = connection
            with contextlib.suppress(OSError):  # the test went away: the status is not sent
                connection.sendall(f"{pid}\n".encode())
            _report_ended(children)  # a SIGCHLD may have come before the pid was known


def _receive(connection: socket.socket) -> tuple[dict[str, Any], list[int]]:
    connection.settimeout(10)  # a test that connected and said nothing must not stop the rest
    fds = array.array("i")
    data, ancillary, _, _ = connection.recvmsg(_MAX_REQUEST, socket.CMSG_LEN(3 * fds.itemsize))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    try:
        while chunk := connection.recv(_MAX_REQUEST):
            data += chunk
        request = json.loads(data)
    except (OSError, ValueError):
        for fd in fds:
            os.close(fd)
        raise
    connection.settimeout(None)
    return request, list(fds)


def _report_ended(children: dict[int, socket.socket]) -> None:
    while children:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            return
        connection = children.pop(pid, None)
        if connection is None:
            continue
        with contextlib.suppress(OSError):  # the test gave up on it (a timeout)
            connection.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
        connection.close()


def _run(request: dict[str, Any]) -> None:
    """In the child: the run's directory, environment and arguments, then the program as the
    interpreter starts it (`python -m MODULE` or `python SCRIPT`)."""
    os.chdir(request["cwd"])
    os.umask(request["umask"])
    os.environ.clear()
    os.environ.update(request["env"])
    if "module" in request:
        sys.path[0] = os.getcwd()
        sys.argv = [request["module"], *request["args"]]
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    else:
        sys.path[0] = os.path.dirname(request["script"])
        sys.argv = [request["script"], *request["args"]]
        runpy.run_path(request["script"], run_name="__main__")


if __name__ == "__main__":
    _run(_serve(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
