"""The active-learning queue seen through HTTP: the same project folder, queue.json and labels.jsonl as
``visionlab active label``, written the same way (``LabelStore.add``, fsync'd, duplicate-checked under the
store's lock).

A queued image is addressed by its content hash (the id), never by a path: the server looks the id up in
its own queue.json and joins the path found there to the pool root, so a request can name only images the
queue already lists. The project is re-read on every call, so a new ``visionlab active query`` shows up
without a restart.
"""
from __future__ import annotations

import functools
import io
import sys
import uuid
from pathlib import Path
from typing import Any, Optional

from PIL import Image, ImageOps

from ..active.facecontext import caption, frame_path, outlined_jpeg
from ..active.session import QUEUE, Project, load_queue
from ..active.store import ChangedImageError, DuplicateLabelError, read_regular, sha256_bytes
from ..active.ui import class_keys
from ..errors import ConfigError, DataError
from .uploads import ApiError

PREVIEW_MAX_SIDE = 768


def _project_errors(fn):
    """Anything a damaged project file raises becomes 503 project_unavailable, never a 500."""
    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        try:
            return fn(self, *args, **kwargs)
        except ApiError:
            raise
        except (ConfigError, DataError, OSError, ValueError, KeyError, TypeError) as e:
            raise ApiError(503, "project_unavailable", f"the project's files cannot be used: {e}") from None
    return wrapper


class Labelling:
    def __init__(self, project_dir: str | Path) -> None:
        self.path = Path(project_dir)
        # fails at start-up, with the active CLI's message, if it is not a project
        self.classes = Project(self.path).classes
        # labels given through this server carry this id; its undo cancels only those
        self.session = f"server-{uuid.uuid4().hex[:12]}"
        self._reported: set[str] = set()

    def project(self) -> Project:
        try:
            return Project(self.path)
        except (ConfigError, DataError) as e:
            raise ApiError(503, "project_unavailable", str(e)) from None

    def _warn(self, proj: Project) -> list[str]:
        """Problems in labels.jsonl, each said once on the server's stderr; returned for the response."""
        problems = list(proj.store.problems)
        for line in problems:
            if line not in self._reported:
                self._reported.add(line)
                print(f"warning: {line}", file=sys.stderr, flush=True)
        return problems

    def _queue(self, proj: Project) -> dict:
        p = proj.path / QUEUE
        if not p.is_file():
            raise ApiError(404, "no_queue", f"the project has no queue yet: run `visionlab active query "
                                            f"{proj.path} --k 20`, then reload")
        try:
            return load_queue(proj)
        except DataError as e:
            raise ApiError(503, "project_unavailable", str(e)) from None

    def _item(self, proj: Project, queue: dict, item_id: str) -> dict:
        for it in queue.get("items", []):
            if it.get("sha256") == item_id:
                return it
        raise ApiError(404, "not_in_queue", f"no queued image has id {item_id}; fetch /v1/queue/next for the "
                                            f"current queue")

    def _file(self, proj: Project, item: dict) -> Path:
        root = proj.pool.resolve()
        p = (root / item["path"]).resolve()
        if root not in p.parents or not p.is_file():  # a hand-edited queue.json cannot reach outside the pool
            raise ApiError(404, "image_missing", f"the queued image {item['path']} is no longer in the pool")
        return p

    def _bytes(self, proj: Project, item: dict) -> bytes:
        """The queued file's bytes, only if they are still the content the queue scored (its id)."""
        path = self._file(proj, item)
        try:
            data = read_regular(path)
        except DataError:
            raise ApiError(404, "image_missing", f"the queued image {item['path']} can no longer be read") from None
        if sha256_bytes(data) != item["sha256"]:
            raise ApiError(409, "image_changed", f"the queued image {item['path']} changed since the query; run "
                                                 f"`visionlab active query` again to queue its new content")
        return data

    def _available(self, proj: Project, item: dict) -> bool:
        try:
            self._bytes(proj, item)
            return True
        except ApiError:
            return False

    @_project_errors
    def next(self, skip: set[str]) -> dict[str, Any]:
        proj = self.project()
        queue = self._queue(proj)
        items = queue.get("items", [])
        live = proj.store.current()
        todo = [it for it in items if it["sha256"] not in live]
        unavailable = 0
        pick = None
        for it in todo:  # a deleted or changed image is passed over, not served first forever
            if it["sha256"] in skip:
                continue
            if self._available(proj, it):
                pick = it
                break
            unavailable += 1
        out: dict[str, Any] = {"classes": proj.classes, "keys": class_keys(proj.classes), "total": len(items),
                               "remaining": len(todo), "labelled": len(items) - len(todo),
                               "unavailable": unavailable, "strategy": queue.get("strategy"),
                               "model_version": queue.get("model_version"), "item": None,
                               "warnings": self._warn(proj)}
        if pick is not None:
            out["item"] = {"id": pick["sha256"], "name": Path(pick["path"]).name,
                           "image_url": f"/v1/queue/image/{pick['sha256']}",
                           "prediction": pick.get("prediction"), "confidence": pick.get("confidence")}
            if frame_path(proj.path, pick) is not None:  # a face pool's item: its photo or frame too
                out["item"]["context"] = {"image_url": f"/v1/queue/context/{pick['sha256']}",
                                          "caption": caption(pick), "face_prob": pick.get("face_prob")}
        return out

    @_project_errors
    def context_jpeg(self, item_id: str) -> bytes:
        """The queued face's photo or video frame with the face outlined (face pools only)."""
        proj = self.project()
        item = self._item(proj, self._queue(proj), item_id)
        jpeg = outlined_jpeg(proj.path, item, PREVIEW_MAX_SIDE)
        if jpeg is None:
            raise ApiError(404, "no_context", f"the queued image {item['path']} has no photo or frame to show "
                                              f"around it (only face pools made by `init --photos` do)")
        return jpeg

    @_project_errors
    def image_jpeg(self, item_id: str) -> bytes:
        proj = self.project()
        item = self._item(proj, self._queue(proj), item_id)
        data = self._bytes(proj, item)  # what is shown is what the id (the hash) names
        try:
            with Image.open(io.BytesIO(data)) as im:
                im = ImageOps.exif_transpose(im)
                im.thumbnail((PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE))
                im = im.convert("RGB")
                buf = io.BytesIO()
                im.save(buf, "JPEG", quality=90)
                return buf.getvalue()
        except Exception:
            raise ApiError(404, "image_unreadable", f"the queued image {item['path']} cannot be decoded") from None

    @_project_errors
    def label(self, item_id: str, label: str) -> dict[str, Any]:
        proj = self.project()
        if label not in proj.classes:
            raise ApiError(422, "unknown_class", f"{label!r} is not a class of this project; use one of "
                                                 f"{', '.join(proj.classes)}")
        queue = self._queue(proj)
        item = self._item(proj, queue, item_id)
        path = self._file(proj, item)
        try:  # as the terminal labeller does: the queue's hash (verified again under the lock), source human
            lab = proj.store.add(path, label, "human", queue.get("model_version"), sha256=item["sha256"],
                                 session=self.session)
        except DuplicateLabelError as e:
            raise ApiError(409, "already_labelled", str(e)) from None
        except ChangedImageError as e:
            raise ApiError(409, "image_changed", str(e)) from None
        except DataError as e:
            if "cannot write" in str(e):  # a full disk: nothing was stored
                raise ApiError(503, "write_failed", str(e), headers={"Retry-After": "5"}) from None
            raise ApiError(404, "image_missing", str(e)) from None
        return {"entry_id": lab.id, "id": lab.sha256, "label": lab.label, "source": lab.source, "time": lab.time}

    @_project_errors
    def undo(self, entry_id: int) -> dict[str, Any]:
        proj = self.project()
        live = {lab.id: lab for lab in proj.store.current().values()}
        lab: Optional[Any] = live.get(entry_id)
        if lab is None or lab.source != "human":
            raise ApiError(404, "no_such_label", f"entry {entry_id} is not a live human label")
        if lab.session != self.session:
            raise ApiError(404, "no_such_label", f"entry {entry_id} was not labelled through this server; only its "
                                                 f"own labels can be undone here (`visionlab active undo --id "
                                                 f"{entry_id}` undoes any)")
        try:
            lab = proj.store.undo(entry_id, session=self.session)
        except DataError as e:  # undone meanwhile by another labeller, or a full disk
            if "cannot write" in str(e):
                raise ApiError(503, "write_failed", str(e), headers={"Retry-After": "5"}) from None
            raise ApiError(404, "no_such_label", str(e)) from None
        return {"entry_id": lab.id, "id": lab.sha256, "label": lab.label, "source": lab.source, "time": lab.time}
