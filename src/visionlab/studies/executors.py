"""Where trials run: local worker processes or Ray tasks, behind one small interface.

An executor has ``submit(fn, arg) -> handle``, ``wait(handles) -> [(handle, result, error)]`` (at least one
finished handle; ``error`` an exception or None) and ``close(cancel=False)``. It knows nothing of studies: the
runner submits ``trial.run_trial`` and ``trial.prepare_data``.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Optional

from ..errors import ConfigError

# Imported once by the fork server; every worker forks from it instead of importing torch, sklearn and
# matplotlib again (seconds per worker, per study). Nothing here runs a torch op, so no OpenMP pool is forked.
# A name that does not import is skipped without a word by multiprocessing: tests/studies checks every one.
PRELOAD = ["torch", "torch._dynamo", "visionlab.api", "visionlab.evaluation", "visionlab.training.trainer",
           "visionlab.studies.trial"]


def default_workers() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def init_worker(threads: int, env: Optional[dict] = None) -> None:
    """Pin the math libraries of a worker to its share of the cores before torch spins up its pools."""
    os.environ.update(env or {})
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process
        pass


def _mp_context():
    import multiprocessing as mp

    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ctx
    return mp.get_context("spawn")


class LocalPool:
    """Worker processes (forkserver or spawn: never a fork of a process that has run torch) with ``threads``
    torch threads each. The parent's VISIONLAB_* variables are passed on: a fork server keeps the environment
    it started with."""

    def __init__(self, workers: int, threads: int) -> None:
        from concurrent.futures import ProcessPoolExecutor

        self.workers, self.threads = workers, threads
        env = {k: v for k, v in os.environ.items() if k.startswith("VISIONLAB_")}
        self._make = lambda: ProcessPoolExecutor(workers, mp_context=_mp_context(), initializer=init_worker,
                                                 initargs=(threads, env))
        self.pool = self._make()

    def submit(self, fn: Callable, arg: Any):
        return self.pool.submit(fn, arg)

    def wait(self, handles: list) -> list[tuple[Any, Any, Optional[BaseException]]]:
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        done, _ = wait(handles, return_when=FIRST_COMPLETED)
        out = []
        broken = False
        for h in done:
            try:
                out.append((h, h.result(), None))
            except BrokenProcessPool as e:
                broken = True
                out.append((h, None, RuntimeError(f"the worker process died ({e or 'killed, out of memory?'})")))
            except Exception as e:
                out.append((h, None, e))
        if broken:  # every in-flight future fails with the pool; start a fresh one for what is left
            for h in handles:
                if h not in done:
                    out.append((h, None, RuntimeError("the worker pool broke while this trial ran")))
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = self._make()
        return out

    def close(self, cancel: bool = False) -> None:
        self.pool.shutdown(wait=not cancel, cancel_futures=cancel)


class RayPool:
    """The same trial function as a Ray task, one CPU share per trial, on a local or remote Ray cluster."""

    def __init__(self, workers: int, threads: int, address: Optional[str]) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("--backend ray needs Ray: pip install 'visionlab[studies]'") from None
        self.ray = ray
        self.started = False
        if not ray.is_initialized():
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                # a local instance listens on loopback only: nothing of it is reachable from the network
                ray.init(num_cpus=workers * threads, include_dashboard=False, log_to_driver=False,
                         _node_ip_address="127.0.0.1")
                self.started = True
        self.threads = threads
        self._fns: dict[Callable, Any] = {}

    def submit(self, fn: Callable, arg: Any):
        if fn not in self._fns:
            threads = self.threads

            def call(a, _fn=fn):
                init_worker(threads)
                return _fn(a)

            self._fns[fn] = self.ray.remote(num_cpus=threads, max_retries=0)(call)
        return self._fns[fn].remote(arg)

    def wait(self, handles: list) -> list[tuple[Any, Any, Optional[BaseException]]]:
        done, _ = self.ray.wait(handles, num_returns=1)
        out = []
        for h in done:
            try:
                out.append((h, self.ray.get(h), None))
            except Exception as e:
                cause = getattr(e, "cause", None) or e
                out.append((h, None, cause if isinstance(cause, BaseException) else e))
        return out

    def close(self, cancel: bool = False) -> None:
        if self.started:
            self.ray.shutdown()


def open_pool(backend: str, workers: int, threads: int, ray_address: Optional[str] = None):
    """A LocalPool (backend ``local``) or a RayPool (``ray``)."""
    if backend == "ray":
        return RayPool(workers, threads, ray_address)
    return LocalPool(workers, threads)


def cancel(handle) -> None:
    """Cancel a handle that has not started, where its kind has a cancel() (a local future)."""
    fn = getattr(handle, "cancel", None)
    if fn:
        fn()
