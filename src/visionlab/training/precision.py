"""Which arithmetic a training run uses, and why: ``--precision auto|fp32|bf16`` resolved against the hardware.

``auto`` turns bf16 autocast on where the hardware runs bf16 natively and keeps fp32 elsewhere:

* CUDA: where ``torch.cuda.is_bf16_supported()`` (Ampere and later).
* CPU: where the CPU has AMX tiles (Intel Sapphire Rapids and later) or AVX512_BF16 (Intel Cooper Lake, AMD
  Zen 4 and later). oneDNN then runs bf16 convolutions and matmuls with native instructions: on a 2-core Zen 4
  a cnn_baseline step at batch 64 measured 6,948 img/s in bf16 channels_last against 3,314 in fp32. Without
  them (AVX2-only CPUs) oneDNN emulates bf16 with conversions and it is slower than fp32, so fp32 is kept.

The flags come from torch's own CPU probe (``torch.cpu._is_*_supported``, the cpuinfo library oneDNN dispatches
on), so the choice matches the kernels that will run; no timed probe is needed. The choice and the CPU's
capabilities are recorded in every run's metrics.json (``compute``) and printed at the start of training.
Whether bf16 reaches the same CIFAR-10 accuracy as fp32 is what the ``precision`` study checks (three seeds
each, cnn_baseline, 15 epochs). On a 2-core AMD EPYC (Zen 4, AVX512_BF16): fp32 63.4% [56.0, 70.8], bf16 62.4%
[54.8, 70.0]; the intervals overlap and the paired per-seed difference, -0.9 points [-1.9, +0.0], does not
separate them either, though bf16 was the lower one on all three seeds. Each bf16 trial took 0.69x the time of
its fp32 twin on one thread (docs/findings.md, "visionlab's own checks"). ``--precision fp32`` keeps fp32.
"""
from __future__ import annotations

import platform
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional

import torch

# torch.cpu probes, by the name recorded in metrics.json; a torch without one of them reports False
_CPU_FLAGS = {"avx2": "_is_avx2_supported", "avx512": "_is_avx512_supported", "vnni": "_is_vnni_supported",
              "avx512_bf16": "_is_avx512_bf16_supported", "amx_tile": "_is_amx_tile_supported",
              "amx_fp16": "_is_amx_fp16_supported"}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


@lru_cache(maxsize=1)
def cpu_capabilities() -> dict:
    """The CPU's model and the instruction sets that decide bf16: {"model", "isa", "flags": {name: bool}}."""
    flags = {}
    for name, probe in _CPU_FLAGS.items():
        fn = getattr(torch.cpu, probe, None)  # private torch API: absent in some versions, so looked up by name
        try:
            flags[name] = bool(fn()) if fn is not None else False
        except (RuntimeError, OSError):
            flags[name] = False
    return {"model": _cpu_model(), "isa": torch.backends.cpu.get_cpu_capability(), "flags": flags}


def cpu_summary(caps: Optional[dict] = None) -> str:
    """'<model> (<torch kernel ISA>; <flags present>)' for ``caps`` (a recorded ``cpu_capabilities()``, default
    this machine's): the one wording benchmarks print and the findings page shows for a run's CPU."""
    caps = caps if caps is not None else cpu_capabilities()
    have = ", ".join(k for k, v in caps.get("flags", {}).items() if v) or "none of the probed extensions"
    return f"{caps['model']} ({caps['isa']}; {have})"


def native_bf16_cpu() -> Optional[str]:
    """The feature that makes bf16 native on this CPU ("AMX" or "AVX512_BF16"), or None."""
    flags = cpu_capabilities()["flags"]
    if flags["amx_tile"]:
        return "AMX"
    if flags["avx512_bf16"]:
        return "AVX512_BF16"
    return None


@dataclass(frozen=True)
class Precision:
    """The resolved precision: ``dtype`` for autocast (None = fp32), its name and the reason it was chosen."""

    dtype: Optional[torch.dtype]
    requested: str
    reason: str

    @property
    def name(self) -> str:
        return "bf16" if self.dtype is torch.bfloat16 else "fp32"

    def record(self, device: torch.device, memory_format: str) -> dict:
        """What metrics.json keeps under ``compute``."""
        out = {"precision": self.name, **{k: v for k, v in asdict(self).items() if k != "dtype"},
               "memory_format": memory_format, "device": str(device)}
        if device.type == "cpu":
            out["cpu"] = cpu_capabilities()
        else:
            out["gpu"] = torch.cuda.get_device_name(device)
        return out


def resolve_precision(requested: str, device: torch.device) -> Precision:
    """``auto`` -> bf16 where the hardware runs it natively, else fp32; ``fp32``/``bf16`` as asked."""
    if requested == "fp32":
        return Precision(None, requested, "asked for")
    if requested == "bf16":
        return Precision(torch.bfloat16, requested, "asked for")
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
        return Precision(torch.bfloat16 if ok else None, requested,
                         "the GPU supports bf16" if ok else "the GPU has no bf16")
    feature = native_bf16_cpu()
    if feature:
        return Precision(torch.bfloat16, requested, f"the CPU has {feature}")
    isa = cpu_capabilities()["isa"]
    return Precision(None, requested, f"no native bf16 on this CPU ({isa}, neither AMX nor AVX512_BF16)")
