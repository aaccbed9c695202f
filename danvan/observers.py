"""A list of observers a part of the system tells what it did, so that it can be measured without knowing by what
(`eventstore.hooks` for appends, `activities.delivery_hooks` for webhook deliveries). An observer must be quick
and must not raise: it runs on the observed path, and an error it raises is logged and dropped, never the
caller's."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar

F = TypeVar("F", bound=Callable[..., None])


class Observers(Generic[F]):
    """The observers of one kind of event, in the order they were added (the same one added twice is kept once)."""

    def __init__(self, what: str, log: logging.Logger) -> None:
        self._what, self._log = what, log
        self._observers: dict[F, None] = {}

    def add(self, observer: F) -> Callable[[], None]:
        """Call `observer` after every event; returns its remover."""
        self._observers[observer] = None

        def remove() -> None:
            self._observers.pop(observer, None)

        return remove

    def __bool__(self) -> bool:
        """Whether anyone listens (a caller may skip its clock when nobody does)."""
        return bool(self._observers)

    def tell(self, *args: Any) -> None:
        """Tell every observer about one event."""
        for observer in tuple(self._observers):
            try:
                observer(*args)
            except Exception:
                self._log.exception("%s observer failed", self._what)
