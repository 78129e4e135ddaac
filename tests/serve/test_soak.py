"""Issue 14's soak test (slow): the real server under 8 concurrent clients for 2 minutes ($VISIONLAB_SOAK_S)
of mixed good and bad uploads, queue reads, labels and undos. No answer may be anything but a documented
2xx/4xx or 503; the server's RSS and open descriptors, sampled each second, must stay flat."""
from __future__ import annotations

import io
import os
import random
import threading
import time

import httpx
import pytest
from PIL import Image

from .conftest import start_server
from .test_load import small_face_image

CLIENTS = 8
SECONDS = float(os.environ.get("VISIONLAB_SOAK_S", "120"))
DOCUMENTED = {200, 201, 400, 404, 405, 408, 409, 413, 415, 422, 503}


def rss_and_fds(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.slow
def test_soak_mixed_clients(tmp_path, run_dir, project, face_model, scene):
    srv = start_server([str(run_dir), "--active", str(project), "--face-model", str(face_model)],
                       tmp_path / "server.log")
    good = small_face_image(scene)
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 64), (90, 20, 20)).save(jpeg, "JPEG")
    bad = [b"", b"hello, not an image", good[: len(good) // 2], b"\xff\xd8\xff" + os.urandom(3000),
           b"\0" * (11 * 2 ** 20)]
    stop = time.monotonic() + SECONDS
    failures: list[str] = []
    counts: dict[int, int] = {}
    lock = threading.Lock()

    def note(r: httpx.Response, what: str) -> None:
        with lock:
            counts[r.status_code] = counts.get(r.status_code, 0) + 1
            if r.status_code not in DOCUMENTED:
                failures.append(f"{what}: {r.status_code} {r.text[:200]}")
            elif r.status_code >= 400 and "error" not in r.json():
                failures.append(f"{what}: {r.status_code} without a JSON error")

    def client(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            while time.monotonic() < stop:
                try:
                    k = rng.random()
                    if k < 0.35:
                        note(c.post("/v1/predict", files={"file": ("f.jpg", good, "image/jpeg")}), "predict")
                    elif k < 0.55:
                        body = rng.choice(bad)
                        note(c.post("/v1/predict", files={"file": ("x.jpg", body, "image/jpeg")}), "bad upload")
                    elif k < 0.75:
                        q = c.get("/v1/queue/next")
                        note(q, "next")
                        item = q.json().get("item") if q.status_code == 200 else None
                        if item:
                            note(c.get(item["image_url"]), "image")
                            r = c.post("/v1/labels", json={"id": item["id"], "label": rng.choice(["WithMask",
                                                                                                 "WithoutMask"])})
                            note(r, "label")
                            if r.status_code == 201 and rng.random() < 0.8:
                                note(c.post("/v1/labels/undo", json={"entry_id": r.json()["entry_id"]}), "undo")
                    elif k < 0.85:
                        note(c.post("/v1/labels", content=b'{"id": ', headers={"content-type": "application/json"}),
                             "broken json")
                    else:
                        note(c.get("/health"), "health")
                except httpx.HTTPError as e:
                    with lock:
                        failures.append(f"transport error: {type(e).__name__}: {e}")

    samples: list[tuple[float, int, int]] = []
    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    try:
        t0 = time.monotonic()
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            samples.append((time.monotonic() - t0, *rss_and_fds(srv.proc.pid)))
            time.sleep(1)
        for t in threads:
            t.join()
    finally:
        srv.stop()
    assert not failures, failures[:10]
    warm = [s for s in samples if s[0] >= SECONDS * 0.25] or samples
    rss = [s[1] for s in warm]
    fds = [s[2] for s in warm]
    print(f"\nsoak {SECONDS:.0f} s, {CLIENTS} clients: {sum(counts.values())} requests {dict(sorted(counts.items()))}; "
          f"RSS {min(rss) / 2 ** 20:.0f}-{max(rss) / 2 ** 20:.0f} MiB after warm-up, fds {min(fds)}-{max(fds)}")
    assert rss[-1] - rss[0] < 64 * 2 ** 20, (rss[0], rss[-1])  # flat: no growth past warm-up
    assert max(fds) - min(fds) < 32, fds
