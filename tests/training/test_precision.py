"""--precision auto: bf16 exactly where the CPU runs it natively, and every run records what it used."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from visionlab.api import train
from visionlab.training.precision import cpu_capabilities, resolve_precision

CPU = torch.device("cpu")
SMALL = dict(data="synthetic", synthetic_per_class=20, image_size=32, epochs=1, batch_size=16, optimizer="adam",
             lr=0.003, quiet=True, threads=1)


def _proc_flags() -> set[str]:
    """The kernel's view of the CPU, independent of torch's cpuinfo probe."""
    text = Path("/proc/cpuinfo").read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("flags"))
    return set(line.split(":", 1)[1].split())


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="needs Linux /proc/cpuinfo to cross-check")
def test_capabilities_agree_with_the_kernel():
    caps, flags = cpu_capabilities(), _proc_flags()
    assert caps["flags"]["avx2"] == ("avx2" in flags)
    assert caps["flags"]["avx512_bf16"] == ("avx512_bf16" in flags)
    assert caps["flags"]["amx_tile"] == ("amx_tile" in flags)
    model = next(ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name"))
    assert caps["model"] == model.split(":", 1)[1].strip()


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="needs Linux /proc/cpuinfo to cross-check")
def test_auto_is_bf16_exactly_where_the_cpu_has_native_bf16():
    flags = _proc_flags()
    native = "amx_tile" in flags or "avx512_bf16" in flags
    p = resolve_precision("auto", CPU)
    assert (p.dtype is torch.bfloat16) == native
    assert p.name == ("bf16" if native else "fp32")
    assert ("AMX" in p.reason or "AVX512_BF16" in p.reason) if native else "no native bf16" in p.reason


def test_explicit_choices_win_over_the_hardware():
    assert resolve_precision("fp32", CPU).dtype is None
    assert resolve_precision("bf16", CPU).dtype is torch.bfloat16
    assert resolve_precision("bf16", CPU).reason == "asked for"


def test_metrics_record_precision_memory_format_and_cpu(tmp_path):
    cnn = train(**SMALL, model="small_cnn", precision="bf16", out=str(tmp_path / "cnn"))
    c = json.loads((cnn.path / "metrics.json").read_text())["compute"]
    assert (c["precision"], c["requested"], c["memory_format"], c["device"]) == ("bf16", "bf16", "channels_last", "cpu")
    assert c["cpu"]["model"] == cpu_capabilities()["model"] and set(c["cpu"]["flags"]) >= {"avx2", "amx_tile"}
    assert cnn.status == "ok" and all(h["train_loss"] == h["train_loss"] for h in cnn.history)  # finite in bf16

    mlp = train(**SMALL, model="ann_baseline", out=str(tmp_path / "mlp"))
    m = json.loads((mlp.path / "metrics.json").read_text())["compute"]
    auto = resolve_precision("auto", CPU)
    assert (m["precision"], m["requested"], m["reason"]) == (auto.name, "auto", auto.reason)
    assert m["memory_format"] == "contiguous"  # no convolution: channels_last buys nothing
