"""Run by torchrun in tests: one DDP step through visionlab.training.distributed; each rank saves its gradients."""
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from visionlab.config import RunConfig
from visionlab.models import build
from visionlab.training.distributed import setup, wrap

out = Path(sys.argv[1])
d = setup(torch.device("cpu"))
torch.manual_seed(0)
model = build(RunConfig.build(model="small_cnn"), 3, 32)
x = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
y = torch.arange(16) % 3
ddp = wrap(model, d, torch.device("cpu"))
xb, yb = d.shard(x, y)
F.cross_entropy(ddp(xb), yb).backward()
save_file({n: p.grad.contiguous() for n, p in model.named_parameters()}, str(out / f"grad{d.rank}.safetensors"))
