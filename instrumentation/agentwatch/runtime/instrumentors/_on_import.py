"""Patch a library when the application imports it, never before: THE way every instrumentor patches.

`opentelemetry-instrument` and `agentwatch.init()` instrument every supported library that is installed. If
each instrumentor imported its library to patch it, an agent that uses only openai would pay the import of
anthropic, mcp, langchain-core, the Agents SDK, ... at every start (seconds). So an instrumentor only
*declares* what it wraps; `ImportPatches` registers a post-import hook (wrapt's) per module and wraps the
attributes when that module has been imported - at once when it already is. Nothing is imported to find out
whether the library is installed either (`importlib.util.find_spec` on the top-level name looks at the path).

Usage, in an instrumentor:

    def _instrument(self, **kwargs):
        patches = self._patches = ImportPatches("anthropic")   # ModuleNotFoundError when not installed
        patches.wrap("anthropic.resources.messages.messages", "Messages.create", create_wrapper)
        patches.when_imported("agents", patch_the_rest)         # or: run code once the module is imported
        patches.start()

    def _uninstrument(self, **kwargs):
        self._patches.stop()   # undoes what was wrapped; hooks of modules never imported stay inert

`wrap(module, attribute, wrapper)` takes a wrapt wrapper `(wrapped, instance, args, kwargs)`; `attribute` is
"function" or "Class.method". An attribute the library's version lacks is logged at INFO and skipped (the
other patches still apply); an attribute that already carries the same wrapper is not wrapped twice. A
`when_imported` callback gets the module and this object, and patches through `patches.wrap_now(...)`, so
`stop()` undoes those too. A failing hook never breaks the application's import: it is counted and logged.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from types import ModuleType
from typing import Any, Callable

import wrapt

_log = logging.getLogger("agentwatch")

Wrapper = Callable[[Any, Any, tuple, dict], Any]


class ImportPatches:
    """The patches of one instrumentor, applied when their modules are imported and undone by `stop()`."""

    def __init__(self, package: str):
        top = package.partition(".")[0]
        if importlib.util.find_spec(top) is None:
            raise ModuleNotFoundError(f"No module named {top!r}", name=top)
        self.package = top
        self._wraps: dict[str, list[tuple[str, Wrapper]]] = {}
        self._callbacks: dict[str, list[Callable[[ModuleType, ImportPatches], None]]] = {}
        self._applied: list[tuple[Any, str, Wrapper]] = []  # (owner, name, wrapper), in order of wrapping
        self._active = False
        self._lock = threading.RLock()

    # --- declaring -------------------------------------------------------------------------------------
    def wrap(self, module: str, attribute: str, wrapper: Wrapper) -> None:
        """Wrap `module.attribute` with `wrapper` once `module` is imported."""
        self._wraps.setdefault(module, []).append((attribute, wrapper))

    def when_imported(self, module: str, callback: Callable[[ModuleType, "ImportPatches"], None]) -> None:
        """Call `callback(module, self)` once `module` is imported (after the declared `wrap`s of it)."""
        self._callbacks.setdefault(module, []).append(callback)

    def start(self) -> None:
        """Register the hooks; modules already imported are patched now."""
        with self._lock:
            self._active = True
        for name in dict.fromkeys([*self._wraps, *self._callbacks]):
            wrapt.register_post_import_hook(self._hook(name), name)

    def stop(self) -> None:
        """Undo every patch applied so far; hooks that have not fired yet do nothing when they do."""
        with self._lock:
            self._active = False
            applied, self._applied = self._applied, []
        for owner, name, wrapper in reversed(applied):
            _unwrap(owner, name, wrapper)

    @property
    def applied(self) -> list[tuple[Any, str]]:
        """(owner, attribute name) of every patch in place, for tests and diagnostics."""
        with self._lock:
            return [(owner, name) for owner, name, _wrapper in self._applied]

    # --- applying --------------------------------------------------------------------------------------
    def wrap_now(self, module: ModuleType | str, attribute: str, wrapper: Wrapper) -> bool:
        """Wrap `attribute` of an imported module now; False when the attribute does not exist (logged)."""
        with self._lock:
            if not self._active:
                return False
            if isinstance(module, str):
                module = importlib.import_module(module)
            found = _resolve(module, attribute)
            if found is None:
                _log.info("agentwatch: %s has no %s.%s; that part is not instrumented", self.package,
                          module.__name__, attribute)
                return False
            owner, name = found
            current = _own_attribute(owner, name)
            if isinstance(current, wrapt.FunctionWrapper) and current._self_wrapper is wrapper:
                return True  # already ours (e.g. a second instrumentor instance that has not stopped)
            wrapt.wrap_function_wrapper(owner, name, wrapper)
            self._applied.append((owner, name, wrapper))
            return True

    def _hook(self, name: str) -> Callable[[ModuleType], None]:
        def on_import(module: ModuleType) -> None:
            try:
                if not self._active:
                    return
                for attribute, wrapper in self._wraps.get(name, ()):
                    self.wrap_now(module, attribute, wrapper)
                for callback in self._callbacks.get(name, ()):
                    callback(module, self)
            except Exception:  # noqa: BLE001 - an exception here would fail the application's import
                from agentwatch.runtime.telemetry import report_internal_error

                report_internal_error(f"patch {name}")

        return on_import


def _resolve(module: ModuleType, attribute: str) -> tuple[Any, str] | None:
    """The object holding `attribute` ("function" or "Class.method") and its last name, if it is callable."""
    owner: Any = module
    *path, last = attribute.split(".")
    for part in path:
        owner = getattr(owner, part, None)
        if owner is None:
            return None
    return (owner, last) if callable(getattr(owner, last, None)) else None


def _own_attribute(owner: Any, name: str) -> Any:
    """The attribute as stored on `owner` itself (for a class: its own __dict__, not an inherited one)."""
    return vars(owner).get(name) if hasattr(owner, "__dict__") else getattr(owner, name, None)


def _unwrap(owner: Any, name: str, wrapper: Wrapper) -> None:
    current = _own_attribute(owner, name)
    if isinstance(current, wrapt.FunctionWrapper) and current._self_wrapper is wrapper:
        setattr(owner, name, current.__wrapped__)
    else:  # someone wrapped it again on top of ours: removing ours would remove theirs too
        _log.debug("agentwatch: %r.%s was wrapped again by someone else; left as it is", owner, name)
