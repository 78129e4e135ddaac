"""A face-crop classifier against a whole-image one, each on the other's home ground, in one run.

    python benchmarks/facemask_crosscheck.py --faces-run runs/facemask-lite0 --whole-run runs/lite0-whole \
        --crops crops/ --facemask ../shared/data/facemask --face-model ../shared/models/face_detection_yunet_2026may.onnx

1. facemask/Test (478 whole images, two classes): the whole-image run classifies each image as it is; the face run
   goes through the detection pipeline as `visionlab detect` does (accurate setting, its profile), takes the most
   likely face, and falls back to the whole image as one crop where no face is found. A "worn incorrectly" answer
   counts as wrong on either class.
2. Face crops of the annotated photos' Test split (crops/Test/WithMask and WithoutMask only, cut from photos no
   run trained on): both runs classify the crops; for the face run, Background and MaskWornIncorrectly answers count
   as wrong (and, beside it, its best of the two classes the whole-image run knows).
Prints accuracy with a Wilson 95% interval (SciPy's binomtest) for each cell.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from scipy.stats import binomtest

from visionlab.data.checks import decode_array
from visionlab.detect.pipeline import DetectionPipeline
from visionlab.detect.faces import YuNetDetector
from visionlab.inference.load import load_classifier


def _resize(rgb: np.ndarray, s: int) -> np.ndarray:
    return cv2.resize(rgb, (s, s), interpolation=cv2.INTER_AREA).transpose(2, 0, 1)


def _acc(correct: list[bool]) -> str:
    k, n = int(sum(correct)), len(correct)
    ci = binomtest(k, n).proportion_ci(method="wilson")
    return f"{100 * k / n:5.1f}% [{100 * ci.low:.1f}, {100 * ci.high:.1f}] ({k}/{n})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces-run", required=True)
    ap.add_argument("--whole-run", required=True)
    ap.add_argument("--crops", required=True, help="the face-crop folder of `visionlab data faces`")
    ap.add_argument("--facemask", required=True, help="the facemask/ ImageFolder (Train/Validation/Test)")
    ap.add_argument("--face-model", required=True)
    a = ap.parse_args()
    faces = load_classifier(a.faces_run, "onnx", threads=0)
    whole = load_classifier(a.whole_run, "onnx", threads=0)
    prof = faces.profile
    det = YuNetDetector(a.face_model, **(prof.detector_options("accurate") if prof else {}))
    pipe = DetectionPipeline(det, faces, margin=prof.margin if prof else 0.2, min_face=0, min_face_prob=0.0)

    rows = []
    test = Path(a.facemask) / "Test"
    for cls in ("WithMask", "WithoutMask"):
        files = sorted((test / cls).glob("*.jpg"))
        ok_w, ok_f, found = [], [], 0
        for f in files:
            rgb = decode_array(f)
            pw = whole.predict_proba(_resize(rgb, whole.image_size)[None])[0]
            ok_w.append(whole.classes[int(np.argmax(pw))] == cls)
            res = pipe(rgb, color="rgb")
            if res:
                found += 1
                best = max(res, key=lambda r: r.face)
                ok_f.append(best.guess == cls)
            else:
                pf = faces.predict_proba(_resize(rgb, faces.image_size)[None])[0]
                names = [c for c in faces.classes if c != "Background"]
                idx = [faces.classes.index(c) for c in names]
                ok_f.append(names[int(np.argmax(pf[idx]))] == cls)
        rows.append((f"facemask/Test {cls} (whole images)", _acc(ok_w), _acc(ok_f) + f", face found in {found}"))
    crops = Path(a.crops) / "Test"
    balanced: dict[str, list] = {}
    for cls in ("WithMask", "WithoutMask"):
        files = sorted(p for p in (crops / cls).glob("*.jpg") if not p.name.startswith("facemask_"))
        batch_w = np.stack([_resize(decode_array(f), whole.image_size) for f in files])
        batch_f = np.stack([_resize(decode_array(f), faces.image_size) for f in files])
        pw = whole.predict_proba(batch_w)
        pf = faces.predict_proba(batch_f)
        ok_w = [whole.classes[int(i)] == cls for i in pw.argmax(1)]
        ok_f = [faces.classes[int(i)] == cls for i in pf.argmax(1)]
        two = [faces.classes.index(c) for c in ("WithMask", "WithoutMask")]
        ok_2 = [("WithMask", "WithoutMask")[int(i)] == cls for i in pf[:, two].argmax(1)]
        rows.append((f"crowd-photo face crops, Test {cls}", _acc(ok_w), _acc(ok_f) + "; of the two classes: "
                     + _acc(ok_2)))
        balanced.setdefault("whole", []).append(np.mean(ok_w))
        balanced.setdefault("faces", []).append(np.mean(ok_f))
        balanced.setdefault("faces, two classes", []).append(np.mean(ok_2))
    print(f"{'data':42s}  {'whole-image run':32s}  face-crop run")
    for r in rows:
        print(f"{r[0]:42s}  {r[1]:32s}  {r[2]}")
    print("balanced accuracy on the crowd-photo crops (mean of the two classes' recall): "
          + ", ".join(f"{k} {100 * np.mean(v):.1f}%" for k, v in balanced.items()))


if __name__ == "__main__":
    main()
