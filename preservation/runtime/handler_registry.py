"""Which function runs which kind of job.

A worker looks a claimed job's ``kind`` up here.  The built-in kinds are
registered by :mod:`preservation.runtime.handlers`; more can be added without
touching the worker, from a plugin named in ``PRESERVE_EXTRA_HANDLERS``
(``module:function[,module:function…]``): each function is called once with
the registry and registers its kinds.

Every handler must be idempotent: a worker can be killed at any instant and
its job run again by another worker, so running a job twice must converge on
the same result and never duplicate an effect.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from preservation.errors import ConfigError
from preservation.repository import Repository

PLUGIN_ENV = "PRESERVE_EXTRA_HANDLERS"


@dataclass(frozen=True)
class JobContext:
    """What a handler gets: the repository and the job it is running."""

    repo: Repository
    job_id: int
    kind: str
    payload: Mapping[str, Any]
    package_id: str | None
    attempt: int
    agent: str


Handler = Callable[[JobContext], "dict[str, Any] | None"]


class HandlerRegistry:
    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(self, kind: str, handler: Handler, *, replace: bool = False) -> None:
        """Run ``handler`` for jobs of ``kind``; raises ConfigError if the kind is taken."""
        if not kind or len(kind) > 32:
            raise ConfigError(f"job kind {kind!r} must be 1-32 characters")
        if kind in self._handlers and not replace:
            raise ConfigError(f"a handler for job kind {kind!r} is registered already")
        self._handlers[kind] = handler

    def get(self, kind: str) -> Handler | None:
        return self._handlers.get(kind)

    def kinds(self) -> list[str]:
        return sorted(self._handlers)

    def load_plugins(self, spec: str | None) -> list[str]:
        """Call each ``module:function`` in ``spec`` with this registry; returns what was loaded.

        Raises ConfigError naming the entry that cannot be imported or called.
        """
        loaded = []
        for entry in (spec or "").split(","):
            entry = entry.strip()
            if not entry:
                continue
            module_name, sep, function_name = entry.partition(":")
            if not sep or not module_name or not function_name:
                raise ConfigError(f"{PLUGIN_ENV} entry {entry!r} must look like package.module:function")
            try:
                module = importlib.import_module(module_name)
            except ImportError as e:
                raise ConfigError(f"{PLUGIN_ENV}: cannot import {module_name!r}: {e}") from e
            setup = getattr(module, function_name, None)
            if not callable(setup):
                raise ConfigError(f"{PLUGIN_ENV}: {module_name!r} has no function {function_name!r}")
            setup(self)
            loaded.append(entry)
        return loaded
