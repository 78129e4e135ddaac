"""A bounded load test: 500 predictions, 8 in flight at a time, against the real server. Every request must
succeed (the default queue of 16 holds the 6 that wait while 2 run, so 503 would be a bug here); p50 and p99
latency are printed."""
from __future__ import annotations

import asyncio
import io
import time

import httpx
import numpy as np
from PIL import Image

REQUESTS = 500
CONCURRENCY = 8


def small_face_image(scene) -> bytes:
    """The left person of pic1.jpeg, 160 px wide: one face, a few kB."""
    with Image.open(scene) as im:
        crop = im.convert("RGB").crop((120, 140, 400, 480))
    crop = crop.resize((160, round(160 * crop.height / crop.width)))
    buf = io.BytesIO()
    crop.save(buf, "JPEG", quality=85)
    return buf.getvalue()


async def hammer(url: str, body: bytes) -> tuple[list[float], list[str], int]:
    latencies: list[float] = []
    failures: list[str] = []
    faces = 0
    todo = iter(range(REQUESTS))

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal faces
        for _ in todo:  # a shared iterator: the workers drain one bounded list of requests together
            t0 = time.perf_counter()
            try:
                r = await client.post("/v1/predict", files={"file": ("face.jpg", body, "image/jpeg")})
            except httpx.HTTPError as e:
                failures.append(f"{type(e).__name__}: {e}")
                continue
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 200:
                failures.append(f"{r.status_code} {r.text[:200]}")
            else:
                faces += len(r.json()["faces"])

    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
    return latencies, failures, faces


def test_500_requests_8_concurrent_no_failures(server, scene, capsys):
    body = small_face_image(scene)
    t0 = time.perf_counter()
    latencies, failures, faces = asyncio.run(hammer(server.url, body))
    wall = time.perf_counter() - t0
    ms = np.array(latencies) * 1e3
    p50, p99 = np.percentile(ms, 50), np.percentile(ms, 99)
    with capsys.disabled():
        print(f"\nload test: {REQUESTS} requests, {CONCURRENCY} concurrent, {len(body)} B image: "
              f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {ms.max():.1f} ms, {REQUESTS / wall:.1f} req/s, "
              f"{len(failures)} failures")
    assert not failures, failures[:5]
    assert len(latencies) == REQUESTS
    assert faces == REQUESTS  # the crop holds one face, found every time
    with httpx.Client(base_url=server.url) as c:
        h = c.get("/health").json()
    assert h["rejected"] == 0 and h["running"] == 0 and h["waiting"] == 0
