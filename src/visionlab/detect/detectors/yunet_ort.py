"""YuNet run by ONNX Runtime instead of OpenCV's ``FaceDetectorYN``: the same file at any input size, including
the dynamic-shape YuNet_n/YuNet_s files that OpenCV's importer refuses (../shared/data/README.md).

The decoding is OpenCV's (``FaceDetectorYN::postProcess``): the image is padded right and bottom to a multiple
of 32; for each stride s in (8, 16, 32) and each cell (row r, column c), score = sqrt(clip(cls) * clip(obj)),
centre = ((c, r) + bbox[:2]) * s, size = exp(bbox[2:]) * s, landmarks = ((c, r) + kps) * s; then NMS
(OpenCV's ``NMSBoxes``, as FaceDetectorYN uses) with the score threshold and top_k.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ...errors import ModelError
from ..faces import FACE_DETECTORS, YuNetDetector

STRIDES = (8, 16, 32)
DIVISOR = 32


def decode(outputs: dict[str, np.ndarray], pad_w: int, pad_h: int) -> tuple[np.ndarray, np.ndarray]:
    """(N x 14 boxes-and-landmarks, N scores) for every anchor of one image's YuNet outputs."""
    rows, scores = [], []
    for s in STRIDES:
        cols, nrows = pad_w // s, pad_h // s
        cls = np.clip(outputs[f"cls_{s}"].reshape(-1), 0, 1)
        obj = np.clip(outputs[f"obj_{s}"].reshape(-1), 0, 1)
        bbox = outputs[f"bbox_{s}"].reshape(-1, 4).astype(np.float64)
        kps = outputs[f"kps_{s}"].reshape(-1, 10).astype(np.float64)
        r, c = np.divmod(np.arange(cols * nrows), cols)
        cx, cy = (c + bbox[:, 0]) * s, (r + bbox[:, 1]) * s
        w, h = np.exp(bbox[:, 2]) * s, np.exp(bbox[:, 3]) * s
        lm = (kps.reshape(-1, 5, 2) + np.stack([c, r], 1)[:, None, :]) * s
        rows.append(np.c_[cx - w / 2, cy - h / 2, w, h, lm.reshape(-1, 10)])
        scores.append(np.sqrt(cls * obj))
    return np.concatenate(rows), np.concatenate(scores)


@FACE_DETECTORS.register("yunet_ort", needs_file=True)
class OrtYuNetDetector(YuNetDetector):
    """``yunet`` with ONNX Runtime (one thread by default): same options, same boxes within a pixel."""

    name = "yunet_ort"
    threads = 1
    # images per session.run: on one thread, 12 tiles of 480 px took 131 ms one by one, 109 ms in pairs,
    # 126 ms in fours and 149 ms in one batch of 12 (YuNet_n, ONNX Runtime 1.32): larger batches leave the cache
    max_batch = 2

    def _load(self) -> None:
        import onnxruntime as ort

        from ...inference.backends import session_options

        try:
            self._session = ort.InferenceSession(str(self.model_path), session_options(self.threads),
                                                 providers=["CPUExecutionProvider"])
        except Exception as e:  # ONNX Runtime's own exception types
            raise ModelError(f"cannot load face model {self.model_path}: {str(e).strip().splitlines()[0]}") from None
        names = {o.name for o in self._session.get_outputs()}
        if not {f"{k}_{s}" for k in ("cls", "obj", "bbox", "kps") for s in STRIDES} <= names:
            raise ModelError(f"{self.model_path} is not a YuNet model (outputs {sorted(names)})")
        inp = self._session.get_inputs()[0]
        self._input = inp.name
        self._names = [o.name for o in self._session.get_outputs()]
        self._batches = not isinstance(inp.shape[0], int)  # the dynamic files take N images; fixed ones take 1

    def _run(self, image: np.ndarray) -> Optional[np.ndarray]:
        return self._run_batch([image])[0]

    def _run_batch(self, images: Sequence[np.ndarray]) -> list[Optional[np.ndarray]]:
        """YuNet's rows for each image; images of the same padded size go through ONE ``session.run`` (a file
        with a fixed batch of 1 gets them one by one). Never padded further than alone: a larger zero border
        would change the network's outputs near the edge, so batched boxes equal the one-at-a-time ones."""
        groups: dict[tuple[int, int], list[int]] = {}
        for i, im in enumerate(images):
            h, w = im.shape[:2]
            groups.setdefault((((w - 1) // DIVISOR + 1) * DIVISOR, ((h - 1) // DIVISOR + 1) * DIVISOR), []).append(i)
        out: list[Optional[np.ndarray]] = [None] * len(images)
        for (pad_w, pad_h), idx in groups.items():
            step = self.max_batch if self._batches else 1
            for k in range(0, len(idx), step):
                chunk = idx[k:k + step]
                blob = np.stack([pad_blob(images[i], pad_w, pad_h) for i in chunk])
                outputs = self._session.run(self._names, {self._input: blob})
                for b, i in enumerate(chunk):
                    out[i] = self._finish({n: o[b] for n, o in zip(self._names, outputs)}, pad_w, pad_h)
        return out

    def _finish(self, outputs: dict[str, np.ndarray], pad_w: int, pad_h: int) -> Optional[np.ndarray]:
        import cv2

        rows, scores = decode(outputs, pad_w, pad_h)
        keep = cv2.dnn.NMSBoxes(rows[:, :4].tolist(), scores.tolist(), self.score_threshold, self.nms_threshold,
                                top_k=self.top_k)
        keep = np.asarray(keep, int).reshape(-1)
        if not len(keep):
            return None
        return np.c_[rows[keep], scores[keep]].astype(np.float32)


def pad_blob(image: np.ndarray, pad_w: int, pad_h: int) -> np.ndarray:
    """3 x pad_h x pad_w float32, BGR 0..255 padded right and bottom with zeros, as FaceDetectorYN feeds it."""
    import cv2

    h, w = image.shape[:2]
    padded = cv2.copyMakeBorder(image, 0, pad_h - h, 0, pad_w - w, cv2.BORDER_CONSTANT, value=0)
    return padded.transpose(2, 0, 1).astype(np.float32)
