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


class BodyLimit:
    def __init__(self, app: Callable, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def _refuse(self, send: Callable) -> None:
        body, headers = json_body(413, "payload_too_large", TooLarge(self.max_bytes).detail)
        headers.append((b"connection", b"close"))  # the unread rest of the body makes the connection unusable
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0:
                    body, headers = json_body(400, "bad_request", "invalid Content-Length header")
                    await send({"type": "http.response.start", "status": 400, "headers": headers})
                    return await send({"type": "http.response.body", "body": body})
                if declared > self.max_bytes:
                    return await self._refuse(send)
        seen = 0
        started = False

        async def counting_receive() -> dict:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    raise TooLarge(self.max_bytes)
            return msg

        async def tracking_send(msg: dict) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except TooLarge:  # raised where no handler turned it into a response (e.g. outside FastAPI's routes)
            if not started:
                await self._refuse(send)


class SecurityHeaders:
    """Everything the page needs is served from here: forbid other origins, framing and MIME sniffing."""

    HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
               (b"referrer-policy", b"no-referrer"),
               (b"content-security-policy", b"default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
                                            b"connect-src 'self'; object-src 'none'; base-uri 'none'; "
                                            b"frame-ancestors 'none'")]

    def __init__(self, app: Callable) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def add_headers(msg: dict) -> None:
            if msg["type"] == "http.response.start":
                msg = dict(msg, headers=list(msg.get("headers", [])) + self.HEADERS)
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
