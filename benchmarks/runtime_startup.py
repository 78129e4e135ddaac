"""One-photo `visionlab detect`: wall time and peak memory of the light runtime against the full install and
against a bare script that loads the same two models (YuNet through OpenCV, the bundled classifier through ONNX
Runtime) and runs them once. All three are measured in this one run, interleaved, each a fresh process.

    python benchmarks/runtime_startup.py                          # builds .venv-runtime/ first if it is missing
    python benchmarks/runtime_startup.py --runtime-venv /path/to/venv --repeats 7

Wall time is the process's whole life (interpreter start, imports, model loads, the photo, writing the
outputs); peak memory is the process's maximum resident set (``ru_maxrss`` from ``wait4``). Targets (issue 33):
the runtime within 2x of the bare script's wall time and under 300 MB peak.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "src" / "visionlab" / "assets"
PHOTO = ASSETS / "photos" / "maksssksksss559.jpg"

# The same models doing the same work as `visionlab detect`'s photo setting (`accurate`: YuNet on the photo as
# it is and enlarged 3x at threshold 0.15, merged by NMS; square crops with a 20% margin; each crop and its mirror
# in one call of each classifier network, an averaged bundle's members all), with nothing of visionlab: no config,
# no outputs written.
BARE = r"""
import sys, cv2, numpy as np, onnxruntime as ort
face, clfs, photo = sys.argv[1], sys.argv[2:-1], sys.argv[-1]
img = cv2.imread(photo)
h, w = img.shape[:2]
det = cv2.FaceDetectorYN.create(face, "", (w, h), 0.15, 0.3, 5000)
rows = []
for s in (1.0, min(3.0, 1600 / max(h, w))):
    im = cv2.resize(img, (round(w * s), round(h * s))) if s != 1.0 else img
    det.setInputSize((im.shape[1], im.shape[0]))
    _, r = det.detect(im)
    if r is not None:
        rows.append(r[:, [0, 1, 2, 3, 14]] / np.r_[s, s, s, s, 1.0])
rows = np.concatenate(rows) if rows else np.zeros((0, 5))
keep = cv2.dnn.NMSBoxes(rows[:, :4].tolist(), rows[:, 4].tolist(), 0.0, 0.3) if len(rows) else []
so = ort.SessionOptions(); so.intra_op_num_threads = 1
sessions = [ort.InferenceSession(c, so, providers=["CPUExecutionProvider"]) for c in clfs]
crops = []
for x, y, bw, bh in rows[np.asarray(keep, int).reshape(-1), :4]:
    side = int(max(bw, bh) * 1.4)
    x0, y0 = int(max(x + bw / 2 - side / 2, 0)), int(max(y + bh / 2 - side / 2, 0))
    c = img[y0:y0 + side, x0:x0 + side]
    if c.size:
        crops.append(cv2.resize(cv2.cvtColor(c, cv2.COLOR_BGR2RGB), (64, 64)).transpose(2, 0, 1))
if crops:
    batch = np.stack(crops).astype(np.float32)
    for sess in sessions:
        sess.run(None, {sess.get_inputs()[0].name: np.concatenate([batch, batch[..., ::-1]])})
print(len(crops), "faces")
"""


def measure(cmd: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024  # KiB on Linux


def ensure_runtime(venv: Path) -> Path:
    py = venv / "bin" / "python"
    if py.exists():
        return py
    print(f"building the light runtime in {venv} (pip install . with no extras) ...", flush=True)
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(venv)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(REPO)], check=True)
    return py


def classifier_files() -> list[Path]:
    """The bundled classifier's files: facemask_classifier.onnx and, for an averaged bundle, the members its
    metadata names (loaded as `visionlab detect` loads them)."""
    from visionlab.inference.average import networks
    from visionlab.inference.load import load_classifier

    return [m.path for m in networks(load_classifier(None, "onnx", 1))]


def du_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runtime-venv", type=Path, default=REPO / ".venv-runtime")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--photo", type=Path, default=PHOTO)
    args = ap.parse_args()
    rt_py = ensure_runtime(args.runtime_venv)
    probe = subprocess.run([str(rt_py), "-c", "import torch"], capture_output=True)
    if probe.returncode == 0:
        raise SystemExit(f"{args.runtime_venv} has torch: not a light runtime")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    tmp = Path(tempfile.mkdtemp(prefix="runtime-bench-"))
    variants = {
        "bare script (OpenCV + ONNX Runtime)": lambda i: [str(rt_py), "-c", BARE,
                                                          str(ASSETS / "face_detection_yunet_2026may.onnx"),
                                                          *map(str, classifier_files()), str(args.photo)],
        "visionlab detect, light runtime": lambda i: [str(args.runtime_venv / "bin" / "visionlab"), "detect",
                                                      str(args.photo), "--out", str(tmp / f"rt{i}")],
        "visionlab detect, full install": lambda i: [sys.executable, "-m", "visionlab", "detect", str(args.photo),
                                                     "--out", str(tmp / f"full{i}")],
    }
    for name, cmd in variants.items():  # one warm-up each: the page cache, not the first import, is measured
        measure(cmd(-1), env)
    times: dict[str, list[float]] = {n: [] for n in variants}
    peaks: dict[str, list[float]] = {n: [] for n in variants}
    for i in range(args.repeats):  # interleaved, so a noisy neighbour hits all three alike
        for name, cmd in variants.items():
            w, m = measure(cmd(i), env)
            times[name].append(w)
            peaks[name].append(m)
    shutil.rmtree(tmp, ignore_errors=True)
    bare = statistics.median(times[next(iter(variants))])
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; photo {args.photo.name}; "
          f"median of {args.repeats} runs each")
    print(f"{'':40s} {'wall s':>8s} {'x bare':>7s} {'peak MB':>8s}")
    for name in variants:
        t = statistics.median(times[name])
        print(f"{name:40s} {t:8.2f} {t / bare:7.2f} {max(peaks[name]):8.0f}")
    site = next((args.runtime_venv / "lib").glob("python*/site-packages"))
    print(f"light runtime venv: {du_mb(args.runtime_venv):.0f} MB on disk ({du_mb(site):.0f} MB site-packages)")
    rt = statistics.median(times["visionlab detect, light runtime"])
    print(f"targets: runtime wall within 2x of bare: {rt / bare:.2f}x "
          f"({'met' if rt / bare <= 2 else 'NOT met'}); peak under 300 MB: "
          f"{max(peaks['visionlab detect, light runtime']):.0f} MB "
          f"({'met' if max(peaks['visionlab detect, light runtime']) < 300 else 'NOT met'})")


if __name__ == "__main__":
    main()
