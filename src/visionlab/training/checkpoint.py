"""Model weights as safetensors and training state through torch.load(weights_only=True), written atomically through visionlab.io."""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..io import WriteError, atomic_write_bytes, write_via  # noqa: F401 (a run's writers, one import for callers)


def save_weights(path: Path, state: dict[str, torch.Tensor]) -> None:
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    write_via(path, lambda p: save_file(tensors, str(p)))


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def save_state(path: Path, state: dict) -> None:
    write_via(path, lambda p: torch.save(state, p))


STATE_KEYS = ("model", "epoch", "history")


def load_state(path: Path) -> dict:
    """A training checkpoint written by ``save_state``; ``ModelError`` (one line) for a truncated, corrupt or
    foreign file."""
    from ..errors import ModelError

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, pickle of a forbidden type, not a torch file at all
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"{path} is not a readable checkpoint ({msg[:200]}); it is truncated or not written by "
                         f"visionlab: delete it to train the run from the start") from None
    if not isinstance(state, dict) or any(k not in state for k in STATE_KEYS):
        raise ModelError(f"{path} is not a visionlab training checkpoint (no {', '.join(STATE_KEYS)}); delete it "
                         f"to train the run from the start")
    return state


def restore_model(model: torch.nn.Module, weights: dict, path: Path) -> None:
    """``model.load_state_dict(weights)`` with one ``ModelError`` line when they belong to another model."""
    from ..errors import ModelError

    try:
        model.load_state_dict(weights)
    except (RuntimeError, KeyError, TypeError, ValueError) as e:
        first = str(e).strip().splitlines()
        detail = first[1].strip() if len(first) > 1 else (first[0] if first else type(e).__name__)
        raise ModelError(f"{path} holds the weights of another model ({detail[:160]}); resume with the run's own "
                         f"settings, or delete the checkpoint to start again") from None
