"""The real CLI in real processes: the labelling UI driven through a pseudo-terminal, and SIGKILLs during
`label` and `retrain` after which nothing is lost, duplicated or moved and the loop carries on."""
import os
import random
import re
import signal
import subprocess
import sys
import time

import pexpect
import pytest

from visionlab.active import loop
from visionlab.active.store import LabelStore, read_jsonl

from .conftest import snapshot

CLI = [sys.executable, "-m", "visionlab.active.cli"]
SGR = r"(?:\x1b\[[0-9;]*m)*"  # rich's colour/bold codes may sit between words on a terminal


def words(*parts: str) -> str:
    """A pattern for the words in order, with whitespace and escape codes allowed between them."""
    return (SGR + r"\s*" + SGR).join(re.escape(p) for p in parts)


def _env():
    env = dict(os.environ, TERM="xterm-256color", COLORTERM="truecolor", COLUMNS="100", PYTHONUNBUFFERED="1")
    env.pop("NO_COLOR", None)
    return env


@pytest.fixture
def project(folders, tmp_path):
    pool, labelled = folders
    loop.init(pool, tmp_path / "proj", labelled=labelled, model="pixels")
    return tmp_path / "proj"


def _truth(path: str) -> str:
    return "mask" if int(path[-7:-4]) % 2 == 0 else "nomask"


def test_label_through_the_terminal_ui_with_undo_and_skip(project, folders):
    q = loop.query(project, k=4)
    items = [it["path"] for it in q["items"]]
    child = pexpect.spawn(CLI[0], CLI[1:] + ["label", str(project)], env=_env(), dimensions=(60, 100),
                          encoding="utf-8", timeout=30)
    child.expect(words("1/4", items[0]))
    child.expect("▀")  # the colour preview
    child.expect(words("1", "mask", "2", "nomask", "u", "undo", "s", "skip", "q", "quit"))
    child.send("2")  # a wrong label on purpose ...
    child.expect(words("saved #1: " + items[0] + " -> nomask"))
    child.send("u")  # ... undone at once
    child.expect(words("undone #1: " + items[0] + " (was nomask)"))
    child.expect(words("1/4", items[0]))  # the same image comes back
    child.send("1")
    child.expect(words("saved #3: " + items[0] + " -> mask"))
    child.send("s")  # skip the second
    child.expect(words("skipped: " + items[1]))
    child.send("x")
    child.expect("unknown key")
    child.send("2")
    child.expect(words("saved #4: " + items[2] + " -> nomask"))
    child.send("q")
    child.expect(words("3 labelled, 1 undone, 1 skipped; 2 of 4 queued images still without a label"))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    live = {lab.path: lab.label for lab in LabelStore(project / "labels.jsonl", folders[0]).labels()}
    assert live == {items[0]: "mask", items[2]: "nomask"}
    recs = read_jsonl(project / "labels.jsonl")
    assert [(r["op"], r["id"]) for r in recs] == [("label", 1), ("undo", 2), ("label", 3), ("label", 4)]
    assert all(r["model_version"] == q["model_version"] for r in recs if r["op"] == "label")
    # a second session shows only what is left (the skipped image and the fourth)
    child = pexpect.spawn(CLI[0], CLI[1:] + ["label", str(project), "--no-preview"], env=_env(),
                          encoding="utf-8", timeout=30)
    child.expect(words("3/4", items[1]))
    child.send("q")
    child.expect(pexpect.EOF)


def _saved_ids(text: str) -> list[int]:
    return [int(line.split("#")[1].split(":")[0]) for line in text.splitlines() if line.startswith("saved #")]


def kill_a_labeller(project, pool, key_of: dict, want: int) -> tuple[set[int], LabelStore]:
    """Start the terminal labeller on ``project``, type the key (``key_of``: sha256 -> key) of every queued face not
    yet labelled, kill it once ``want`` labels were said to be saved, and check the store: every acknowledged label
    survived and none was written twice. Returns the acknowledged ids and the store."""
    p = subprocess.Popen(CLI + ["label", str(project), "--no-preview"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_env(), text=True, bufsize=1)
    live = {lab.sha256 for lab in LabelStore(project / "labels.jsonl", pool).labels()}
    acknowledged = type_then_kill(p, "".join(k for sha, k in key_of.items() if sha not in live), want)
    store = LabelStore(project / "labels.jsonl", pool)
    recs = store.records()
    assert acknowledged <= {r["id"] for r in recs}  # every "saved" survived the kill
    hashes = [r["sha256"] for r in recs if r["op"] == "label"]
    assert len(hashes) == len(set(hashes))  # and nothing was written twice
    return acknowledged, store


def type_then_kill(p: subprocess.Popen, keys: str, want: int) -> set[int]:
    """Send every key at once to a labeller (it is busy writing when the kill lands), SIGKILL it once it has said
    ``want`` labels were saved, and return the ids of every label it acknowledged, the kill's leftovers included."""
    p.stdin.write(keys)
    p.stdin.flush()
    out: list[str] = []
    while len(_saved_ids("".join(out))) < want:
        line = p.stdout.readline()
        assert line, "".join(out)
        out.append(line)
    p.send_signal(signal.SIGKILL)
    rest, _ = p.communicate(timeout=30)
    assert p.returncode == -signal.SIGKILL
    return set(_saved_ids("".join(out) + rest))


def test_kill_during_label_loses_and_duplicates_nothing(project, folders):
    pool, labelled = folders
    before = snapshot(pool), snapshot(labelled)
    q = loop.query(project, k=12)
    truth = {it["sha256"]: _truth(it["path"]) for it in q["items"]}
    keys = "".join("1" if truth[it["sha256"]] == "mask" else "2" for it in q["items"])
    rnd = random.Random(0)
    acknowledged: set[int] = set()
    for attempt in range(3):
        got, store = kill_a_labeller(project, pool, {it["sha256"]: k for it, k in zip(q["items"], keys)},
                                     rnd.randint(1, 2))
        acknowledged |= got
        hashes = [r["sha256"] for r in store.records() if r["op"] == "label"]
        assert all(store.current()[h].label == truth[h] for h in hashes)
        assert (snapshot(pool), snapshot(labelled)) == before
    # the loop continues: a fresh labeller finishes the queue, then retrain and the next query
    live = {lab.sha256 for lab in LabelStore(project / "labels.jsonl", pool).labels()}
    todo = "".join(k for it, k in zip(q["items"], keys) if it["sha256"] not in live) + "q"
    done = subprocess.run(CLI + ["label", str(project), "--no-preview"], input=todo, capture_output=True, text=True,
                          env=_env(), timeout=30)
    assert done.returncode == 0, done.stderr
    assert "0 of 12 queued images still without a label" in done.stdout
    labels = LabelStore(project / "labels.jsonl", pool).labels()
    assert sorted(lab.sha256 for lab in labels) == sorted(truth)
    assert loop.retrain(project)["n_train"] == 6 + 12
    assert loop.check_integrity(project)["problems"] == []
    assert (snapshot(pool), snapshot(labelled)) == before


def test_kill_during_retrain_keeps_the_last_round_and_the_loop_continues(project, folders):
    pool, labelled = folders
    before = snapshot(pool), snapshot(labelled)
    for it in loop.query(project, k=6)["items"]:
        loop.add_label(project, it["path"], _truth(it["path"]))
    labels_before = (project / "labels.jsonl").read_bytes()
    state_before = (project / "state.json").read_text()
    for delay in (0.0, 0.4):
        p = subprocess.Popen(CLI + ["retrain", str(project), "--epochs", "200000"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, env=_env(), text=True)
        line = p.stdout.readline()  # printed just before the training loop starts
        assert line.startswith("training round 1 on 12 images"), line
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=30)
        assert p.returncode == -signal.SIGKILL
        assert (project / "state.json").read_text() == state_before  # round 0 still current, file intact
        assert loop.status(project)["round"] == 0
        assert (project / "labels.jsonl").read_bytes() == labels_before
        assert (snapshot(pool), snapshot(labelled)) == before
    assert loop.retrain(project)["model_version"].startswith("r1-")
    s = loop.status(project)
    assert s["round"] == 1 and [r["round"] for r in s["rounds"]] == [0, 1] and s["rounds"][1]["n_train"] == 12
    assert len(loop.query(project, k=5)["items"]) == 5
    assert (snapshot(pool), snapshot(labelled)) == before
