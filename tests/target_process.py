"""Target processes for the tests, forked from one that has already loaded the program.

Hundreds of tests each start the target. A new Python process spends ~0.9 s of CPU loading the
program (the Singer SDK above all) before it reads a line, and on 2 cores that was most of the
test command's time. So each pytest worker starts one process that loads the program and then
waits; for a run it forks a child. The child is a real process of its own: its own stdin, stdout
and stderr pipes, working directory, environment, arguments, exit status and signals, and it
runs what `python -m target_amazon_dsp_conversions` runs (`runpy`, as `-m` does). Only the
loading is shared, and nothing has run before the fork but imports.

A run that needs what only a new interpreter gives (a `preexec_fn`, `PYTHON*` variables that
differ from the parent's) starts a new interpreter instead: see `run`.

Protocol, over one Unix socket connection per run: the test sends the run's argv, cwd and
environment as JSON with its three pipe ends (SCM_RIGHTS); the server answers the child's pid,
then, when the child has ended, its exit status as subprocess reports it (-N: signal N).
"""

from __future__ import annotations

import array
import atexit
import contextlib
import json
import os
import runpy
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

MODULE = "target_amazon_dsp_conversions"
_MAX_REQUEST = 1 << 20


# --------------------------------------------------------------------------- the test's side
class _Server:
    """The forking process of this pytest process, started on first use."""

    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="target-forks-")
        self.address = os.path.join(self.directory, "socket")
        lifeline_read, self._lifeline = os.pipe()  # the server ends when this pytest process does
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.target_process", self.address, str(lifeline_read)],
            cwd=Path(__file__).resolve().parent.parent,
            pass_fds=(lifeline_read,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
        )
        os.close(lifeline_read)
        assert self.process.stdout is not None
        ready = self.process.stdout.readline()
        if ready != b"ready\n":
            raise RuntimeError(f"the target's fork server did not start: {ready!r}")
        atexit.register(self.close)

    def close(self) -> None:
        os.close(self._lifeline)
        self.process.wait(timeout=30)


_server: _Server | None = None
_server_lock = threading.Lock()


def _the_server() -> _Server:
    global _server
    with _server_lock:
        if _server is None or _server.process.poll() is not None:
            _server = _Server()
        return _server


def _needs_new_interpreter(env: dict[str, str], preexec_fn: Callable[[], None] | None) -> bool:
    """What the fork cannot give: code run before the program, or an interpreter setting."""
    if preexec_fn is not None:
        return True
    interpreter = {k: v for k, v in env.items() if k.startswith("PYTHON")}
    return interpreter != {k: v for k, v in os.environ.items() if k.startswith("PYTHON")}


def run(
    args: list[str],
    *,
    module: str = MODULE,
    input: str,
    cwd: Path,
    env: dict[str, str],
    timeout: float,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`python -m MODULE ARGS` as `subprocess.run(..., text=True, capture_output=True)` runs
    it, in a forked process when that is the same thing."""
    command = [sys.executable, "-m", module, *args]
    if _needs_new_interpreter(env, preexec_fn):
        return subprocess.run(
            command, input=input, capture_output=True, text=True,
            cwd=cwd, env=env, timeout=timeout, check=False, preexec_fn=preexec_fn,
        )  # fmt: skip
    server = _the_server()
    stdin_read, stdin_write = os.pipe()
    stdout_read, stdout_write = os.pipe()
    stderr_read, stderr_write = os.pipe()
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(server.address)
        umask = os.umask(0o022)
        os.umask(umask)  # as a child inherits it
        request = json.dumps(
            {"module": module, "args": args, "cwd": str(cwd), "env": env, "umask": umask}
        ).encode()
        fds = array.array("i", [stdin_read, stdout_write, stderr_write])
        connection.sendmsg([request], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        connection.shutdown(socket.SHUT_WR)
    finally:
        for fd in (stdin_read, stdout_write, stderr_write):
            os.close(fd)
    answers = connection.makefile("rb")
    pid = int(answers.readline())
    outputs: dict[int, bytes] = {}

    def feed() -> None:
        try:
            with open(stdin_write, "wb") as stdin:
                stdin.write(input.encode())
        except BrokenPipeError:
            pass  # the target stopped reading (as subprocess.run ignores it)

    def drain(fd: int) -> None:
        with open(fd, "rb") as stream:
            outputs[fd] = stream.read()

    threads = [
        threading.Thread(target=feed, daemon=True),
        threading.Thread(target=drain, args=(stdout_read,), daemon=True),
        threading.Thread(target=drain, args=(stderr_read,), daemon=True),
    ]
    for thread in threads:
        thread.start()
    connection.settimeout(timeout)
    try:
        status = answers.readline()
    except TimeoutError:
        os.kill(pid, signal.SIGKILL)
        raise subprocess.TimeoutExpired(command, timeout) from None
    finally:
        for thread in threads:
            thread.join(timeout=30)
        answers.close()
        connection.close()
    returncode = int(status)
    stdout, stderr = (_text(outputs.get(fd, b"")) for fd in (stdout_read, stderr_read))
    return subprocess.CompletedProcess(command, returncode, stdout, stderr)


def _text(data: bytes) -> str:
    """As subprocess's text mode reads a pipe: decoded, universal newlines."""
    return data.decode().replace("\r\n", "\n").replace("\r", "\n")


# --------------------------------------------------------------------------- the server's side
def _serve(address: str, lifeline: int) -> dict[str, Any]:
    """Fork a child for each request; return (in the child only) the request it is to run."""
    import target_amazon_dsp_conversions.cli  # noqa: F401 - what every run loads

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
            request, fds = _receive(connection)
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
            connection.sendall(f"{pid}\n".encode())
            _report_ended(children)  # a SIGCHLD may have come before the pid was known


def _receive(connection: socket.socket) -> tuple[dict[str, Any], list[int]]:
    fds = array.array("i")
    data, ancillary, _, _ = connection.recvmsg(_MAX_REQUEST, socket.CMSG_LEN(3 * fds.itemsize))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    while chunk := connection.recv(_MAX_REQUEST):
        data += chunk
    return json.loads(data), list(fds)


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


def _become(request: dict[str, Any]) -> None:
    """In the child: the run's working directory, environment and arguments, as `-m` sets them."""
    os.chdir(request["cwd"])
    os.umask(request["umask"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.path[0] = os.getcwd()
    sys.argv = [request["module"], *request["args"]]


if __name__ == "__main__":
    request = _serve(sys.argv[1], int(sys.argv[2]))
    _become(request)
    runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
