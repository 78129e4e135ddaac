"""--track tensorboard / mlflow: a tiny synthetic run, its logs read back with each library's own reader."""
from __future__ import annotations

import csv
import subprocess
import sys

import pytest

from visionlab.api import train
from visionlab.config import RunConfig
from visionlab.errors import ConfigError
from visionlab.training.tracking import TRACKERS

TINY = dict(data="synthetic", synthetic_per_class=20, image_size=32, model="small_cnn", epochs=3, batch_size=16,
            optimizer="adam", lr=0.003, quiet=True, threads=1, report="metrics")


def _history(run) -> list[dict]:
    with open(run / "history.csv") as f:
        return list(csv.DictReader(f))


def test_track_flag_takes_comma_lists_and_repeats():
    assert RunConfig.build(track="mlflow, TensorBoard").track == ["mlflow", "tensorboard"]
    assert RunConfig.build(track=["tensorboard", "tensorboard,mlflow"]).track == ["tensorboard", "mlflow"]
    with pytest.raises(ConfigError, match="track"):
        RunConfig.build(track="wandb")
    assert TRACKERS.names() == ["mlflow", "tensorboard"]


def test_tensorboard_scalars_hparams_and_text_read_back(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    r = train(**TINY, out=str(tmp_path / "run"), track=["tensorboard"])
    acc = EventAccumulator(str(r.path / "tensorboard"), size_guidance={"tensors": 0, "scalars": 0})
    acc.Reload()
    hist = _history(r.path)
    loss = acc.Scalars("train/loss")
    assert [e.step for e in loss] == [1, 2, 3]
    assert [round(e.value, 5) for e in loss] == [round(float(h["train_loss"]), 5) for h in hist]
    assert [round(e.value, 5) for e in acc.Scalars("val/acc")] == [round(float(h["val_acc"]), 5) for h in hist]
    assert acc.Scalars("final/test_acc")[0].value == pytest.approx(r.metrics["test_acc"], abs=1e-6)
    tags = acc.Tags()["tensors"]
    assert "config/text_summary" in tags and "report/text_summary" in tags
    config_text = acc.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "model: small_cnn" in config_text
    from tensorboard.plugins.hparams import plugin_data_pb2

    hp = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(hp["_hparams_/session_start_info"])
    assert start.session_start_info.hparams["model"].string_value == "small_cnn"
    assert start.session_start_info.hparams["lr"].number_value == pytest.approx(0.003)


def test_mlflow_params_metrics_and_artifacts_read_back(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    r = train(**{**TINY, "report": "full"}, out=str(tmp_path / "runs" / "one"), track="mlflow")
    store = tmp_path / "runs" / "mlflow.db"  # default: a local SQLite store beside the run folder
    assert store.is_file()
    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    exp = client.get_experiment_by_name("visionlab")
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.run_name == "one" and run.info.status == "FINISHED"
    assert run.data.params["model"] == "small_cnn" and float(run.data.params["lr"]) == 0.003
    hist = _history(r.path)
    steps = client.get_metric_history(run.info.run_id, "val_loss")
    assert [m.step for m in steps] == [1, 2, 3]
    assert [round(m.value, 5) for m in steps] == [round(float(h["val_loss"]), 5) for h in hist]
    assert run.data.metrics["final_test_acc"] == pytest.approx(r.metrics["test_acc"])
    arts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"report.html", "metrics.json", "config.yaml", "history.csv", "plots"} <= arts
    assert (tmp_path / "runs" / "mlartifacts").is_dir() and not (tmp_path / "mlartifacts").exists()


def test_missing_library_is_one_line_naming_the_extra(tmp_path):
    # a real interpreter where importing mlflow fails, as on an install without the extra
    code = ("import sys; sys.modules['mlflow'] = None; sys.modules['mlflow.tracking'] = None\n"
            "from visionlab.cli import main\n"
            f"main(['train', '--data', 'synthetic', '--track', 'mlflow', '--out', r'{tmp_path / 'r'}', '--quiet'])")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "visionlab[track]" in lines[0] and "--track mlflow" in lines[0]
    assert not (tmp_path / "r").exists()  # said before any data was loaded or folder written
