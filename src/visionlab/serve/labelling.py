"""The active-learning queue seen through HTTP: the same project folder, queue.json and labels.jsonl as
``visionlab active label``, written the same way (``LabelStore.add``, fsync'd, duplicate-checked under the
store's lock).

A queued image is addressed by its content hash (the id), never by a path: the server looks the id up in
its own queue.json and joins the path found there to the pool root, so a request can name only images the
queue already lists. The project is re-read on every call, so a new ``visionlab active query`` shows up
without a restart.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Optional

from PIL import Image, ImageOps

from ..active.session import QUEUE, Project
from ..active.store import DuplicateLabelError
from ..active.ui import class_keys
from ..errors import ConfigError, DataError
from .uploads import ApiError

PREVIEW_MAX_SIDE = 768


class Labelling:
    def __init__(self, project_dir: str | Path) -> None:
        self.path = Path(project_dir)
        # fails at start-up, with the active CLI's message, if it is not a project
        self.classes = Project(self.path).classes

    def project(self) -> Project:
        try:
            return Project(self.path)
        except (ConfigError, DataError) as e:
            raise ApiError(503, "project_unavailable", str(e)) from None

    def _queue(self, proj: Project) -> dict:
        p = proj.path / QUEUE
        if not p.is_file():
            raise ApiError(404, "no_queue", f"the project has no queue yet: run `visionlab active query "
                                            f"{proj.path} --k 20`, then reload")
        try:
            return json.loads(p.read_text())
        except ValueError:
            raise ApiError(503, "project_unavailable", f"{p} is not valid JSON; run `visionlab active query` "
                                                       f"again") from None

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

    def next(self, skip: set[str]) -> dict[str, Any]:
        proj = self.project()
        queue = self._queue(proj)
        items = queue.get("items", [])
        live = proj.store.current()
        todo = [it for it in items if it["sha256"] not in live]
        pick = next((it for it in todo if it["sha256"] not in skip), None)
        out: dict[str, Any] = {"classes": proj.classes, "keys": class_keys(proj.classes), "total": len(items),
                               "remaining": len(todo), "labelled": len(items) - len(todo),
                               "strategy": queue.get("strategy"), "model_version": queue.get("model_version"),
                               "item": None}
        if pick is not None:
            out["item"] = {"id": pick["sha256"], "name": Path(pick["path"]).name,
                           "image_url": f"/v1/queue/image/{pick['sha256']}",
                           "prediction": pick.get("prediction"), "confidence": pick.get("confidence")}
        return out

    def image_jpeg(self, item_id: str) -> bytes:
        proj = self.project()
        path = self._file(proj, self._item(proj, self._queue(proj), item_id))
        try:
            with Image.open(path) as im:
                im = ImageOps.exif_transpose(im)
                im.thumbnail((PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE))
                im = im.convert("RGB")
                buf = io.BytesIO()
                im.save(buf, "JPEG", quality=90)
                return buf.getvalue()
        except Exception:
            raise ApiError(404, "image_unreadable", f"the queued image {path.name} cannot be read") from None

    def label(self, item_id: str, label: str) -> dict[str, Any]:
        proj = self.project()
        if label not in proj.classes:
            raise ApiError(422, "unknown_class", f"{label!r} is not a class of this project; use one of "
                                                 f"{', '.join(proj.classes)}")
        queue = self._queue(proj)
        item = self._item(proj, queue, item_id)
        path = self._file(proj, item)
        try:  # as the terminal labeller does: the queue's hash, the queue's model version, source human
            lab = proj.store.add(path, label, "human", queue.get("model_version"), sha256=item["sha256"])
        except DuplicateLabelError as e:
            raise ApiError(409, "already_labelled", str(e)) from None
        return {"entry_id": lab.id, "id": lab.sha256, "label": lab.label, "source": lab.source, "time": lab.time}

    def undo(self, entry_id: int) -> dict[str, Any]:
        proj = self.project()
        live = {lab.id: lab for lab in proj.store.current().values()}
        lab: Optional[Any] = live.get(entry_id)
        if lab is None or lab.source != "human":
            raise ApiError(404, "no_such_label", f"entry {entry_id} is not a live human label")
        try:
            lab = proj.store.undo(entry_id)
        except DataError as e:  # undone meanwhile by another labeller
            raise ApiError(404, "no_such_label", str(e)) from None
        return {"entry_id": lab.id, "id": lab.sha256, "label": lab.label, "source": lab.source, "time": lab.time}
