"""requests sessions for every HTTP call of a run (uploads, definition calls, the token call):
one per thread, the environment read once, and every connection cut at once when the run
stops, so a hung request never holds a stop up for its whole timeout.

What a server may answer is bounded: a redirect is returned as it is, never followed (it would
send the request, its secrets included, wherever the server says, and count its answer as
Amazon's; `answers.py` makes it a set-up problem); a body must arrive whole within the request's
timeout and hold at most `MAX_ANSWER_BYTES` once decompressed, and the whole answer, status line
and headers included, within `ANSWER_TIMEOUTS` timeouts of sending, else the request failed as a
timeout or a lost connection does."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from target_amazon_dsp_conversions.threads import stop_signals_blocked

# URLs remembered as requests prepares them (a handful per run; bounded for odd inputs).
_MAX_URLS = 256
# Amazon's answers are small (a page of definitions, a 207 of 500 items: well under 1 MiB).
MAX_ANSWER_BYTES = 16 << 20
_CHUNK_BYTES = 1 << 16
# A request's whole answer must have come this many timeouts after sending: one to its first
# byte, one for the rest. Each read of the status line and headers waits at most one timeout,
# so a server trickling them byte by byte would otherwise hold the request for ever.
ANSWER_TIMEOUTS = 2


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer, read whole: its status, headers and (decompressed) body."""

    status_code: int
    headers: CaseInsensitiveDict[str]
    content: bytes


def read_json(answer: Answer) -> Any:
    """The answer's JSON body; None when it has none or it is not JSON (or nests deeper than
    Python can read)."""
    if not answer.content:
        return None
    try:
        return json.loads(answer.content)
    except (ValueError, RecursionError):
        return None


class Sessions:
    """The HTTP sessions of one run (or one `check`)."""

    def __init__(self) -> None:
        """No connection yet; each thread opens its own."""
        self._local = threading.local()
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self._lock = threading.Lock()
        self.cut = False
        self._deadlines = _Deadlines()
        # requests reads the environment (proxies, netrc, CA bundle) on every request when
        # trust_env is on, which costs more CPU than the request itself; it is read here once,
        # with requests' own rules, and the sessions do not look again.
        self._verify: bool | str = (
            os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        )
        self._proxies: dict[str, dict[str, str]] = {}
        self._urls: dict[str, str] = {}  # as given -> as requests sends it
        self._pools = _cuttable_pools(self._opened)

    def request(
        self, method: str, url: str, *, data: Any, headers: dict[str, str], timeout: float
    ) -> Answer:
        """One request on this thread's session, its answer read whole (see the module's
        docstring); raises requests' errors as they are."""
        if self.cut:
            raise requests.ConnectionError("the run is stopping")
        session = self._session()
        # What `Session.request` does, less its per-request cost (half the CPU of an upload):
        # the URL is checked and encoded once per URL, and the environment is not read.
        prepared = requests.PreparedRequest()
        prepared.prepare_method(method)
        prepared.url = self._prepared_url(url)
        merged = CaseInsensitiveDict(session.headers)
        merged.update(headers)
        prepared.prepare_headers(merged)
        prepared.prepare_cookies(session.cookies)
        prepared.prepare_body(data or {}, None)
        prepared.prepare_auth(None)
        prepared.prepare_hooks(None)
        watched = self._deadlines.watch(
            time.monotonic() + ANSWER_TIMEOUTS * timeout, self._thread_sockets()
        )
        self._local.watched = watched
        try:
            try:
                response = session.send(
                    prepared,
                    timeout=timeout,
                    allow_redirects=False,
                    proxies=self._proxies_for(url),
                    stream=True,
                    verify=self._verify,
                    cert=None,
                )
                with response:  # released to the pool once read whole; closed otherwise
                    content = _read_whole(response, time.monotonic() + timeout)
            finally:
                cut = self._deadlines.unwatch(watched)
        except requests.RequestException:
            if not cut:
                raise
        if cut:  # a connection cut mid-headers reads as headers that ended and no body
            raise requests.Timeout("the answer was still coming at its deadline")
        return Answer(response.status_code, response.headers, content)

    def cut_all(self) -> None:
        """Close every connection, in use or not: requests waiting for an answer fail at once
        (a stop). Connections opened afterwards are closed as they open."""
        with self._lock:
            self.cut = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)

    def _opened(self, sock: socket.socket) -> None:
        self._thread_sockets().add(sock)  # connections open in the thread that uses them
        watched: _Watched | None = getattr(self._local, "watched", None)
        with self._lock:
            self._sockets.add(sock)
            cut = self.cut
        if cut or (watched is not None and watched.cut):  # connected after the deadline
            _shut(sock)

    def _thread_sockets(self) -> weakref.WeakSet[socket.socket]:
        """The sockets of this thread's session (one per host it talks to)."""
        sockets: weakref.WeakSet[socket.socket] | None = getattr(self._local, "sockets", None)
        if sockets is None:
            sockets = self._local.sockets = weakref.WeakSet()
        return sockets

    def _prepared_url(self, url: str) -> str:
        prepared = self._urls.get(url)
        if prepared is None:
            request = requests.PreparedRequest()
            request.prepare_url(url, None)
            prepared = request.url
            assert prepared is not None
            if len(self._urls) < _MAX_URLS:
                self._urls[url] = prepared
        return prepared

    def _proxies_for(self, url: str) -> dict[str, str]:
        # Per scheme and host, as no_proxy decides per host.
        key = "/".join(url.split("/", 3)[:3])
        proxies = self._proxies.get(key)
        if proxies is None:
            proxies = self._proxies[key] = requests.utils.get_environ_proxies(key + "/")
        return proxies

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = _NoRedirects()
            session.trust_env = False
            session.verify = self._verify
            # One session per thread, so one kept-alive connection each is enough.
            adapter = _CuttableAdapter(self._pools)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
        return session


class _NoRedirects(requests.Session):
    """A session that sees no redirect in any answer: even with `allow_redirects=False`,
    requests reads a redirect's whole body (no cap, no deadline) and parses its Location."""

    def get_redirect_target(self, resp: requests.Response) -> None:
        """None: the answer is returned as it is (`answers.py` says what a 3xx means)."""


class _CuttableAdapter(HTTPAdapter):
    """requests' adapter with urllib3 pools whose connections report their sockets."""

    def __init__(self, pools: dict[str, type[HTTPConnectionPool]]) -> None:
        self._pools = pools
        super().__init__(pool_connections=1, pool_maxsize=1)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pools

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if type(manager).__module__.startswith("urllib3.poolmanager"):  # not SOCKS
            manager.pool_classes_by_scheme = self._pools
        return manager


def _cuttable_pools(opened: Any) -> dict[str, type[HTTPConnectionPool]]:
    """urllib3's pool classes, with connections that call `opened(socket)` once connected."""

    class Connection(HTTPConnection):
        def connect(self) -> None:
            super().connect()
            opened(self.sock)

    class SecureConnection(HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            opened(self.sock)

    class Pool(HTTPConnectionPool):
        ConnectionCls = Connection

    class SecurePool(HTTPSConnectionPool):
        ConnectionCls = SecureConnection

    return {"http": Pool, "https": SecurePool}


@dataclass(slots=True)
class _Watched:
    """A request under watch: its deadline, the sockets it may be using, whether it was cut."""

    deadline: float
    sockets: weakref.WeakSet[socket.socket]
    cut: bool = False


class _Deadlines:
    """Cuts the connections of a request still waiting for its answer at its deadline: the
    read fails at once, and the request counts as timed out (retried). One thread watches
    every request of the sessions, started with the first and ended once none was watched
    for a while; it looks once a second (a cut comes at most a second late), so a request
    costs two dictionary changes, not a wake-up."""

    _IDLE_SECONDS = 5.0

    def __init__(self) -> None:
        self._watched: dict[int, _Watched] = {}
        self._lock = threading.Lock()
        self._watching = False

    def watch(self, deadline: float, sockets: weakref.WeakSet[socket.socket]) -> _Watched:
        """`sockets` are cut once `deadline` (monotonic) passes, unless `unwatch`ed before."""
        watched = _Watched(deadline, sockets)
        with self._lock:
            self._watched[id(watched)] = watched
            if not self._watching:
                self._watching = True
                with stop_signals_blocked():
                    threading.Thread(target=self._run, name="deadlines", daemon=True).start()
        return watched

    def unwatch(self, watched: _Watched) -> bool:
        """No longer watched; whether it was cut."""
        with self._lock:
            self._watched.pop(id(watched), None)
            return watched.cut

    def _run(self) -> None:
        idle_since = time.monotonic()
        try:
            while True:
                time.sleep(1.0)
                now = time.monotonic()
                with self._lock:
                    due = [w for w in self._watched.values() if w.deadline <= now]
                    for watched in due:
                        del self._watched[id(watched)]
                        watched.cut = True
                    if self._watched or due:
                        idle_since = now
                    elif now - idle_since >= self._IDLE_SECONDS:
                        self._watching = False
                        return
                for watched in due:
                    for sock in _snapshot(watched.sockets):
                        _shut(sock)
        finally:
            with self._lock:
                self._watching = False


def _snapshot(sockets: weakref.WeakSet[socket.socket]) -> list[socket.socket]:
    """The sockets now (their thread may add one meanwhile, which a plain list() refuses)."""
    while True:
        try:
            return list(sockets)
        except RuntimeError:  # noqa: PERF203 - changed size during iteration: look again
            continue


def _read_whole(response: requests.Response, deadline: float) -> bytes:
    """The body, decompressed; requests.Timeout when it is still coming at `deadline` (each read
    also waits at most the timeout), requests.ConnectionError beyond MAX_ANSWER_BYTES or when
    the connection fails."""
    raw: urllib3.BaseHTTPResponse = response.raw
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            # read1: what one read of the socket brings, so a trickle meets the deadline too.
            chunk = raw.read1(_CHUNK_BYTES, decode_content=True)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise requests.ConnectionError(
                    f"an answer of more than {MAX_ANSWER_BYTES >> 20} MiB"
                )
            if time.monotonic() > deadline:
                raise requests.Timeout("the answer was still coming when its time was up")
            chunks.append(chunk)
    except requests.RequestException:
        raise  # ours, above (an OSError too)
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise requests.Timeout(str(exc)) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise requests.ConnectionError(type(exc).__name__) from None


def _shut(sock: socket.socket) -> None:
    # shutdown, not close: it wakes a thread blocked reading the socket; the owner closes it.
    # The socket's own shutdown, not TLS's (which drops the TLS state first: a thread sending
    # at that instant would send in the clear); urllib3's TLS-in-TLS wrapper (an HTTPS proxy)
    # holds its socket as `.socket`.
    raw = getattr(sock, "socket", sock)
    with contextlib.suppress(OSError, TypeError, ValueError):
        socket.socket.shutdown(raw, socket.SHUT_RDWR)
