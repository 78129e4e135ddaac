"""The kill tests of test_terminal.py on a face pool: SIGKILL while labelling loses no acknowledged label and
writes none twice; SIGKILL while retraining leaves round 0 current (no PROJECT/model, state and labels intact),
and the next retrain completes."""
from __future__ import annotations

import random
import signal
import subprocess
import time

import pytest

from visionlab.active import loop

from .conftest import snapshot
from .test_terminal import CLI, _env, kill_a_labeller

KEY = {"MaskWornIncorrectly": "1", "WithMask": "2", "WithoutMask": "3", "NotAFace": "n"}


def test_kill_during_face_labelling_loses_and_duplicates_nothing(face_project, face_inputs):
    folder, _ = face_inputs
    before = snapshot(folder)
    q = loop.query(face_project, k=10)
    truth = {it["sha256"]: it["prediction"] for it in q["items"]}
    pool = face_project / "faces"
    rnd = random.Random(1)
    acknowledged: set[int] = set()
    for attempt in range(2):
        got, store = kill_a_labeller(face_project, pool, {it["sha256"]: KEY[truth[it["sha256"]]] for it in q["items"]},
                                     rnd.randint(1, 3))
        acknowledged |= got
        hashes = [r["sha256"] for r in store.records() if r["op"] == "label"]
        assert all(store.current()[h].label == truth[h] for h in hashes)
        assert snapshot(folder) == before
    assert loop.check_integrity(face_project)["problems"] == []


@pytest.mark.slow
def test_kill_during_face_retrain_keeps_round_0(face_project, face_inputs):
    folder, _ = face_inputs
    before = snapshot(folder)
    for it in loop.query(face_project, k=6)["items"]:
        loop.add_label(face_project, face_project / "faces" / it["path"], it["prediction"])
    labels_before = (face_project / "labels.jsonl").read_bytes()
    state_before = (face_project / "state.json").read_text()
    rounds_before = (face_project / "rounds.jsonl").read_bytes()
    for delay in (0.0, 2.0):
        p = subprocess.Popen(CLI + ["retrain", str(face_project), "--epochs", "100000"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, env=_env(), text=True)
        line = p.stdout.readline()  # printed just before the training loop starts
        while line and not line.startswith("round 1: fine-tuning"):
            line = p.stdout.readline()
        assert line, "retrain ended before training"
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=30)
        assert p.returncode == -signal.SIGKILL
        assert (face_project / "state.json").read_text() == state_before
        assert (face_project / "rounds.jsonl").read_bytes() == rounds_before
        assert (face_project / "labels.jsonl").read_bytes() == labels_before
        assert not (face_project / "model").exists() and loop.status(face_project)["round"] == 0
        assert snapshot(folder) == before
    rec = loop.retrain(face_project, epochs=1)
    assert rec["round"] == 1 and (face_project / "model" / "model.onnx").is_file()
    assert loop.status(face_project)["round"] == 1
    assert len(loop.query(face_project, k=3)["items"]) == 3
