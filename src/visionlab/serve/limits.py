"""Limits that keep one client from taking the service down: body size, concurrent inference, queue length.

``BodyLimit`` is plain ASGI so it acts before any parsing: a declared Content-Length over the cap is refused
without reading a byte, and a body without one (chunked) is counted as it arrives and refused the moment it
passes the cap. ``Limiter`` lets ``max_concurrency`` inferences run (in a thread pool) and up to
``max_queue`` wait; the next one gets 503 with Retry-After at once instead of an ever longer wait.
"""
from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from starlette.exceptions import HTTPException as StarletteHTTPException

from .uploads import ApiError

T = TypeVar("T")


def json_body(status: int, error: str, detail: str) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    body = json.dumps({"error": error, "detail": detail}).encode()
    return body, [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]


class TooLarge(StarletteHTTPException):
    """Raised from inside ``receive``. An HTTPException, because FastAPI re-raises those from body parsing
    (anything else becomes its generic 400); the app's handler turns it into the JSON 413."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the request body is over the limit of {max_bytes / 2 ** 20:g} MiB; send a smaller "
                              f"image", headers={"Connection": "close"})


class SpoolFull(StarletteHTTPException):
    """The bodies being received at once would pass ``max_spool_bytes``: 503, retry shortly."""

    def __init__(self, max_bytes: int, retry_after_s: int = 1) -> None:
        super().__init__(503, f"the server is receiving {max_bytes / 2 ** 20:g} MiB of uploads already; retry in "
                              f"{retry_after_s} s", headers={"Retry-After": str(retry_after_s), "Connection": "close"})


class BodyTimeout(StarletteHTTPException):
    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"the request body did not arrive within {seconds:g} s; send it again",
                         headers={"Connection": "close"})


class BodyLimit:
    """Caps on request bodies, before any parsing: each body at most ``max_bytes``; all bodies being received
    at once at most ``max_spool_bytes`` together (so unfinished uploads cannot fill the disk with spooled
    temporary files); and each body must keep arriving: ``body_timeout_s`` without a byte ends it with 408."""

    def __init__(self, app: Callable, max_bytes: int, max_spool_bytes: int | None = None,
                 body_timeout_s: float | None = 30.0) -> None:
        self.app, self.max_bytes = app, max_bytes
        self.max_spool_bytes = max(max_spool_bytes or 0, max_bytes) if max_spool_bytes else None
        self.body_timeout_s = body_timeout_s
        self.inflight = 0  # body bytes declared or received by requests still being handled
        self.refused_spool = 0

    async def _answer(self, send: Callable, status: int, error: str, detail: str,
                      extra: list[tuple[bytes, bytes]] = ()) -> None:
        body, headers = json_body(status, error, detail)
        headers += list(extra) + [(b"connection", b"close")]  # the unread rest of the body makes it unusable
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _refuse(self, send: Callable) -> None:
        await self._answer(send, 413, "payload_too_large", TooLarge(self.max_bytes).detail)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0:
                    return await self._answer(send, 400, "bad_request", "invalid Content-Length header")
                if declared > self.max_bytes:
                    return await self._refuse(send)
        reserved = declared or 0
        if self.max_spool_bytes is not None and reserved and self.inflight + reserved > self.max_spool_bytes:
            self.refused_spool += 1
            e = SpoolFull(self.max_spool_bytes)
            return await self._answer(send, 503, "busy", e.detail, [(b"retry-after", b"1")])
        self.inflight += reserved
        seen = 0
        counted = 0  # bytes of a body without Content-Length added to inflight as they arrive
        started = False
        body_done = scope.get("method") in ("GET", "HEAD", "OPTIONS") and not declared

        async def counting_receive() -> dict:
            nonlocal seen, counted, body_done
            if body_done or not self.body_timeout_s:
                msg = await receive()
            else:
                try:
                    msg = await asyncio.wait_for(receive(), self.body_timeout_s)
                except asyncio.TimeoutError:
                    raise BodyTimeout(self.body_timeout_s) from None
            if msg["type"] == "http.request":
                n = len(msg.get("body", b""))
                seen += n
                if seen > self.max_bytes:
                    raise TooLarge(self.max_bytes)
                if declared is None and n:
                    if self.max_spool_bytes is not None and self.inflight + n > self.max_spool_bytes:
                        self.refused_spool += 1
                        raise SpoolFull(self.max_spool_bytes)
                    self.inflight += n
                    counted += n
                if not msg.get("more_body", False):
                    body_done = True
            return msg

        async def tracking_send(msg: dict) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except (TooLarge, SpoolFull, BodyTimeout) as e:  # raised where no handler made it a response
            if not started:
                code = {413: "payload_too_large", 503: "busy", 408: "request_timeout"}[e.status_code]
                extra = [(b"retry-after", b"1")] if e.status_code == 503 else []
                await self._answer(send, e.status_code, code, str(e.detail), extra)
        finally:
            self.inflight -= reserved + counted


def host_name(value: str) -> str:
    """The host part of a Host header or an origin's netloc, lower case, without port or IPv6 brackets."""
    v = value.strip().lower()
    if v.startswith("["):
        return v[1:v.find("]")] if "]" in v else v
    return v.rsplit(":", 1)[0] if v.count(":") == 1 else v


class HostCheck:
    """DNS rebinding defence: answer only requests whose Host header names this server (by default its
    loopback names and the address it is bound to; ``allowed_hosts`` widens that, ``*`` allows any), and
    refuse state-changing requests (POST, PUT, PATCH, DELETE) a browser sends from another origin: an
    ``Origin`` header must name an allowed host, and ``Sec-Fetch-Site: cross-site`` is refused. Clients that
    send no Origin (curl, scripts) are not browsers running someone else's page and pass."""

    # Not Starlette's TrustedHostMiddleware: it refuses with a plain-text 400 (the API's contract is a JSON 421
    # misdirected_request), refuses an IPv6 Host such as [::1]:8000 it was told to allow, and has no Origin check.
    UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}

    def __init__(self, app: Callable, allowed_hosts: list[str] | tuple[str, ...]) -> None:
        self.app = app
        self.any = "*" in allowed_hosts
        self.allowed = {host_name(h) for h in allowed_hosts if h != "*"}

    def ok_host(self, value: str) -> bool:
        return self.any or host_name(value) in self.allowed

    async def _refuse(self, send: Callable, status: int, error: str, detail: str) -> None:
        body, headers = json_body(status, error, detail)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        host = headers.get("host", "")
        if not self.ok_host(host):
            return await self._refuse(send, 421, "misdirected_request",
                                      f"this server does not answer to the host name {host_name(host)!r}; open it "
                                      f"as http://127.0.0.1 (or start it with --allow-host NAME)")
        if scope.get("method") in self.UNSAFE:
            origin = headers.get("origin")
            if origin is not None:
                from urllib.parse import urlsplit
                netloc = urlsplit(origin).netloc if origin != "null" else ""
                if not netloc or not self.ok_host(netloc) or netloc.lower() != host.lower():
                    return await self._refuse(send, 403, "forbidden_origin",
                                              f"a {scope['method']} from the page of another site ({origin}) is "
                                              f"refused; use this server's own page")
            elif headers.get("sec-fetch-site") == "cross-site":
                return await self._refuse(send, 403, "forbidden_origin", "a cross-site request is refused")
        await self.app(scope, receive, send)


class SecurityHeaders:
    """Everything the page needs is served from here: forbid other origins, framing and MIME sniffing."""

    HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
               (b"referrer-policy", b"no-referrer"),
               (b"content-security-policy", b"default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
                                            b"connect-src 'self'; object-src 'none'; base-uri 'none'; "
                                            b"frame-ancestors 'none'")]

    # /docs (Swagger UI) styles its elements inline (swagger-api/swagger-ui#3370): that page alone may; it shows
    # no request's content, and its scripts still come from this server only
    DOCS_HEADERS = [*HEADERS[:3], (b"content-security-policy",
                                   b"default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                                   b"connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")]

    def __init__(self, app: Callable) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = self.DOCS_HEADERS if scope.get("path") == "/docs" else self.HEADERS

        async def add_headers(msg: dict) -> None:
            if msg["type"] == "http.response.start":
                msg = dict(msg, headers=list(msg.get("headers", [])) + headers)
            await send(msg)

        await self.app(scope, receive, add_headers)


class Limiter:
    """At most ``max_concurrency`` calls run (each in the pool's threads); at most ``max_queue`` wait."""

    def __init__(self, max_concurrency: int, max_queue: int, retry_after_s: int = 1) -> None:
        if max_concurrency < 1 or max_queue < 0:
            raise ValueError("max_concurrency must be at least 1 and max_queue at least 0")
        self.max_concurrency, self.max_queue, self.retry_after_s = max_concurrency, max_queue, retry_after_s
        self.pool = ThreadPoolExecutor(max_concurrency, thread_name_prefix="visionlab-infer")
        self._sem: asyncio.Semaphore | None = None
        self.running = 0
        self.waiting = 0
        self.rejected = 0

    @property
    def sem(self) -> asyncio.Semaphore:
        if self._sem is None:  # created on first use, inside the server's event loop
            self._sem = asyncio.Semaphore(self.max_concurrency)
        return self._sem

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        sem = self.sem
        if sem.locked() and self.waiting >= self.max_queue:
            self.rejected += 1
            raise ApiError(503, "busy", f"the server is busy ({self.running} running, {self.waiting} waiting); "
                                        f"retry in {self.retry_after_s} s",
                           headers={"Retry-After": str(self.retry_after_s)})
        self.waiting += 1
        try:
            await sem.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            fut = asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)
        except BaseException:
            self.running -= 1
            sem.release()
            raise

        def done(_: asyncio.Future) -> None:  # the slot frees when the work ends, even if the client left
            self.running -= 1
            sem.release()

        fut.add_done_callback(done)
        return await asyncio.shield(fut)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
