"""Who wants to know how appends went: a small hook, so the store can be measured without knowing by what.

The store calls every observer after each `EventStore.append` with the seconds it took, the number of events
and its outcome. The metrics of a process (`danvan.metrics`) register one; the store itself imports nothing of
theirs. An observer must be quick and must not raise: it runs on the append's path (an error it raises is
logged and dropped, never the append's).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

from danvan.observers import Observers

log = logging.getLogger("danvan.eventstore")

#: `appended`: new events stored; `duplicate`: the very same events were stored already (a retry);
#: `conflict`: the stream was at another version (`ConcurrencyError`); `error`: anything else that failed.
AppendOutcome = Literal["appended", "duplicate", "conflict", "error"]
AppendObserver = Callable[[float, int, AppendOutcome], None]

_observers: Observers[AppendObserver] = Observers("an append", log)


def observe_appends(observer: AppendObserver) -> Callable[[], None]:
    """Call `observer(seconds, events, outcome)` after every append of this process; returns its remover."""
    return _observers.add(observer)


def observed() -> bool:
    """Whether anyone listens (the store skips the clock when nobody does)."""
    return bool(_observers)


def appended(seconds: float, events: int, outcome: AppendOutcome) -> None:
    """Tell every observer about one append."""
    _observers.tell(seconds, events, outcome)
