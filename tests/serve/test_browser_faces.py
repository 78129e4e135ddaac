"""Labelling a face pool on the page in headless Chromium: each face enlarged beside its photo or video frame
with the face outlined; keys for the classes, n for "not a face", s to skip and u to undo, all landing in the
project's labels.jsonl. The pool is made from the bundled photos and a video written from one of them."""
from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import SHARED, need, start_server
from .test_api import live_labels
from .test_browser import SHOTS, chromium_page, wait_until

PHOTOS = Path(__file__).resolve().parents[2] / "src" / "visionlab" / "assets" / "photos"


def _video(path: Path) -> Path:
    import cv2

    img = cv2.imread(str(PHOTOS / "pic1.jpeg"))
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (640, 440))
    for i in range(30):  # a camera panning over two masked people
        vw.write(img[50:490, 4 * i:4 * i + 640])
    vw.release()
    return path


@pytest.fixture(scope="module")
def face_project(tmp_path_factory):
    import shutil

    from visionlab.active import loop

    root = tmp_path_factory.mktemp("face-serve")
    cam = root / "camera"
    cam.mkdir()
    shutil.copy(PHOTOS / "maksssksksss627.jpg", cam)
    _video(cam / "clip.mp4")
    loop.init(photos=[cam], project=root / "proj", holdout=0)
    loop.query(root / "proj", k=6)
    return root / "proj"


@pytest.fixture(scope="module")
def face_server(tmp_path_factory, face_project):
    srv = start_server(["--active", str(face_project)], tmp_path_factory.mktemp("face-serve-log") / "server.log")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    with chromium_page(tmp_path_factory.mktemp("chromium-profile")) as pg:
        yield pg


LOADED = ("(old) => { const i = document.getElementById('queue-img'), c = document.getElementById('queue-context');"
          " return Boolean(i.dataset.id) && i.dataset.id !== old && i.complete && i.naturalWidth > 0"
          " && !c.hidden && c.dataset.id === i.dataset.id && c.complete && c.naturalWidth > 0; }")


def _next(page, old=None) -> str:
    wait_until(page, LOADED, old)
    return page.get_attribute("#queue-img", "data-id")


def test_label_faces_with_context_keys_skip_and_undo(page, face_server, face_project):
    page.goto(face_server.url + "/#label")
    first = _next(page)
    buttons = page.locator("#class-buttons button").all_inner_texts()
    assert [b.split(maxsplit=1)[1] for b in buttons] == ["MaskWornIncorrectly", "WithMask", "WithoutMask",
                                                        "not a face"]
    # the face enlarged beside its photo/frame: both shown side by side, the frame wider than the face
    face_box, ctx_box = page.locator("#queue-img").bounding_box(), page.locator("#queue-context").bounding_box()
    assert ctx_box["x"] >= face_box["x"] + face_box["width"] and ctx_box["width"] > face_box["width"]
    assert face_box["height"] >= 200  # a 40 px face is shown at least five times larger
    where = page.inner_text("#queue-where")
    assert ".jpg" in where or ".mp4 at" in where
    assert "face probability" in where
    page.keyboard.press("2")
    second = _next(page, first)
    page.keyboard.press("n")  # not a face
    third = _next(page, second)
    wait_until(page, "() => document.getElementById('label-status').textContent.includes('NotAFace')")
    page.keyboard.press("u")  # undo: the second comes back
    assert _next(page, third) == second
    page.keyboard.press("3")
    third = _next(page, second)
    page.keyboard.press("s")  # skip the third
    fourth = _next(page, third)
    page.keyboard.press("1")
    _next(page, fourth)
    wait_until(page, "() => document.getElementById('label-status').textContent.includes('Saved')")
    live = {k: v["label"] for k, v in live_labels(face_project).items()}
    assert live == {first: "WithMask", second: "WithoutMask", fourth: "MaskWornIncorrectly"}
    undone = [line for line in (face_project / "labels.jsonl").read_text().splitlines() if '"undo"' in line]
    assert len(undone) == 1 and '"NotAFace"' in undone[0]
    page.screenshot(path=str(SHOTS / "visionlab-serve-label-faces.png"), full_page=True)
    assert not [e for e in page.errors if "favicon" not in e], page.errors


def test_context_route(face_server, face_project):
    import httpx

    with httpx.Client(base_url=face_server.url, timeout=60) as c:
        nxt = c.get("/v1/queue/next").json()
        item = nxt["item"]
        r = c.get(item["context"]["image_url"])
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.content[:2] == b"\xff\xd8"
        assert c.get("/v1/queue/context/" + "0" * 64).status_code == 404


# --- the acceptance walk-through ----------------------------------------------------------------------
BOXES = SHARED / "data" / "facemask_boxes"
WALK_PHOTOS = ["maksssksksss0.jpg", "maksssksksss1.jpg", "maksssksksss10.jpg", "maksssksksss101.jpg",
               "maksssksksss105.jpg", "maksssksksss106.jpg", "maksssksksss107.jpg", "maksssksksss108.jpg"]
W, H, FPS, HOLD = 640, 480, 10, 15  # each photo held 1.5 s


def _walk_video(path: Path) -> dict[int, tuple[str, tuple[float, float]]]:
    """A real video from shared photos: each shown 1.5 s at 640 x 480. Returns frame -> (photo, scale)."""
    import cv2

    shown = {}
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (W, H))
    for k, name in enumerate(WALK_PHOTOS):
        img = cv2.imread(str(BOXES / "images" / name))
        scale = (W / img.shape[1], H / img.shape[0])
        for i in range(HOLD):
            vw.write(cv2.resize(img, (W, H), interpolation=cv2.INTER_AREA))
            shown[k * HOLD + i] = (name, scale)
    vw.release()
    return shown


@pytest.mark.slow
def test_walk_through_video_query_label_in_the_page_retrain_detect(page, tmp_path):
    """init on a video made from shared photos, query 20, label them in the page (the oracle from boxes.csv
    presses the keys), retrain, and `detect --model PROJECT` uses the new model."""
    need(BOXES / "boxes.csv")
    replay = need(SHARED / "data" / "facemask" / "Train")
    import visionlab
    from visionlab.active import loop
    from visionlab.active.faceoracle import BoxOracle
    from visionlab.active.facepool import load_faces

    video = tmp_path / "camera.mp4"
    shown = _walk_video(video)
    proj = tmp_path / "shopcam"
    s = loop.init(photos=[video], project=proj, holdout=0.0)
    assert s["face_pool"]["faces"] >= 20
    oracle = BoxOracle(BOXES / "boxes.csv")
    faces = {f["sha256"]: f for f in load_faces(proj)}

    def truth(sha: str) -> str:
        f = faces[sha]
        name, scale = shown[f["frame"]]
        return oracle.label(name, f["box"], scale)

    q = loop.query(proj, k=20)
    assert len(q["items"]) == 20
    keys = {"MaskWornIncorrectly": "1", "WithMask": "2", "WithoutMask": "3", "NotAFace": "n"}
    srv = start_server(["--active", str(proj)], tmp_path / "server.log")
    try:
        page.goto(srv.url + "/#label")
        current = _next(page)
        for i in range(20):
            page.keyboard.press(keys[truth(current)])
            if i < 19:
                current = _next(page, current)
        wait_until(page, "() => document.getElementById('label-empty').textContent.includes('Every queued')")
    finally:
        srv.stop()
    live = {k: v["label"] for k, v in live_labels(proj).items()}
    assert live == {it["sha256"]: truth(it["sha256"]) for it in q["items"]}
    rec = loop.retrain(proj, epochs=1, replay=replay)
    assert rec["round"] == 1 and rec["n_train"] == 20
    frame = tmp_path / "frame.jpg"
    import cv2
    cap = cv2.VideoCapture(str(video))
    ok, img = cap.read()
    cap.release()
    cv2.imwrite(str(frame), img)
    adapted, bundled = visionlab.detect(frame, model=str(proj)), visionlab.detect(frame)
    from visionlab.inference.load import load_classifier
    assert Path(load_classifier(str(proj)).source).resolve() == (proj / "rounds" / "round-001" / "model.onnx").resolve()
    assert [f.probs for f in adapted] != [f.probs for f in bundled]
