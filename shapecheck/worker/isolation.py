"""Process state that a check must leave as it found it.

User code and torch's own helpers change process-wide state while a model is built and
traced: logger levels, `linecache`, the random generators, `sys.path`, the working folder,
environment variables, warning filters, and torch's defaults (device, dtype, grad mode,
deterministic flags, threads, matmul precision). `isolated()` snapshots all of it and puts
it back, so `check_file` / `check_source` / `check` can run inside a user's own process (a
notebook, a test suite) and a warm worker can run check after check.

`snapshot()` is the same record in comparable form, for tests.
"""

from __future__ import annotations

import contextlib
import linecache
import logging
import os
import random
import sys
import warnings
from typing import Any


@contextlib.contextmanager
def isolated():
    saved = _capture()
    try:
        yield
    finally:
        _restore(saved)


def snapshot() -> dict[str, Any]:
    """The state `isolated` keeps, as plain comparable values."""
    saved = _capture()
    out = {k: v for k, v in saved.items() if k not in ("torch_rng", "numpy_rng", "linecache")}
    out["linecache"] = sorted(saved["linecache"])
    out["modules"] = sorted(sys.modules)
    out["torch_rng"] = bytes(saved["torch_rng"].tolist()) if saved.get("torch_rng") is not None else None
    out["numpy_rng"] = repr(saved.get("numpy_rng"))
    return out


def _capture() -> dict[str, Any]:
    saved: dict[str, Any] = {
        "loggers": _logger_levels(),
        "logging_disable": logging.root.manager.disable,
        "linecache": dict(linecache.cache),
        "random": random.getstate(),
        "path": list(sys.path),
        "cwd": os.getcwd(),
        "environ": dict(os.environ),
        "warnings": list(warnings.filters),
        "recursion": sys.getrecursionlimit(),
    }
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        saved["numpy_rng"] = numpy.random.get_state()
    if "torch" in sys.modules:
        saved.update(_torch_state(sys.modules["torch"]))
    return saved


def _logger_levels() -> dict[str, tuple]:
    """Logger name -> (level, disabled, propagate, the logger)."""
    loggers = [("", logging.root)] + [(n, log) for n, log in logging.root.manager.loggerDict.items()
                                      if isinstance(log, logging.Logger)]
    return {name: (log.level, log.disabled, log.propagate, log) for name, log in loggers}


def _torch_state(torch) -> dict[str, Any]:
    state = {
        "torch_rng": torch.get_rng_state(),
        "torch_dtype": torch.get_default_dtype(),
        "torch_grad": torch.is_grad_enabled(),
        "torch_deterministic": (torch.are_deterministic_algorithms_enabled(),
                                torch.is_deterministic_algorithms_warn_only_enabled()),
        "torch_anomaly": torch.is_anomaly_enabled(),
        "torch_threads": torch.get_num_threads(),
        "torch_matmul": torch.get_float32_matmul_precision(),
        "torch_cudnn": (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
                        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32),
    }
    if hasattr(torch, "get_default_device"):
        state["torch_device"] = str(torch.get_default_device())
    return state


def _restore(saved: dict[str, Any]) -> None:
    _restore_loggers(saved["loggers"])
    if logging.root.manager.disable != saved["logging_disable"]:
        logging.disable(saved["logging_disable"])
    linecache.cache.clear()
    linecache.cache.update(saved["linecache"])
    random.setstate(saved["random"])
    sys.path[:] = saved["path"]
    _restore_cwd(saved["cwd"])
    _restore_environ(saved["environ"])
    warnings.filters[:] = saved["warnings"]
    warnings._filters_mutated()  # noqa: SLF001 - the documented way to reset the warning caches
    sys.setrecursionlimit(saved["recursion"])
    if "numpy_rng" in saved:
        sys.modules["numpy"].random.set_state(saved["numpy_rng"])
    if "torch_rng" in saved:
        _restore_torch(sys.modules["torch"], saved)


def _restore_loggers(levels: dict[str, tuple]) -> None:
    """Only the loggers that changed: `setLevel` clears every logger's cache."""
    for level, disabled, propagate, log in levels.values():
        if log.level != level:
            log.setLevel(level)
        if log.disabled != disabled or log.propagate != propagate:
            log.disabled, log.propagate = disabled, propagate


def _restore_cwd(cwd: str) -> None:
    if os.getcwd() != cwd:
        os.chdir(cwd)


def _restore_environ(environ: dict[str, str]) -> None:
    if dict(os.environ) == environ:
        return
    for name in set(os.environ) - set(environ):
        del os.environ[name]
    os.environ.update(environ)


def _restore_torch(torch, saved: dict[str, Any]) -> None:
    torch.set_rng_state(saved["torch_rng"])
    torch.set_default_dtype(saved["torch_dtype"])
    torch.set_grad_enabled(saved["torch_grad"])
    enabled, warn_only = saved["torch_deterministic"]
    now = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    if now != (enabled, warn_only):  # setting it imports torch._inductor (seconds) on first use
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
    torch.autograd.set_detect_anomaly(saved["torch_anomaly"])
    if torch.get_num_threads() != saved["torch_threads"]:
        torch.set_num_threads(saved["torch_threads"])
    torch.set_float32_matmul_precision(saved["torch_matmul"])
    cudnn = torch.backends.cudnn
    cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved["torch_cudnn"]
    if "torch_device" in saved and str(torch.get_default_device()) != saved["torch_device"]:
        torch.set_default_device(None if saved["torch_device"] == "cpu" else saved["torch_device"])
