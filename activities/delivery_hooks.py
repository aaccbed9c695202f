"""Who wants to know how webhook deliveries went: a small hook, as `eventstore.hooks` is for appends.

The delivery activities (`activities.webhooks`) call every observer after each attempt with the seconds it took
and the HTTP status of the answer (None when there was none: a timeout, a refused connection, a refused
address). The metrics of a process register one (`danvan.metrics` in the API's registry, `danvan.worker_metrics`
on a worker's port); the activities import nothing of theirs. An observer must be quick and must not raise (an
error it raises is logged and dropped, never the delivery's).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from danvan.observers import Observers

log = logging.getLogger("danvan.webhooks")

DeliveryObserver = Callable[[float, int | None], None]
_observers: Observers[DeliveryObserver] = Observers("a delivery", log)


def observe_deliveries(observer: DeliveryObserver) -> Callable[[], None]:
    """Call `observer(seconds, status_code)` after every delivery attempt of this process; returns its remover."""
    return _observers.add(observer)


def delivered(seconds: float, status_code: int | None) -> None:
    _observers.tell(seconds, status_code)


def labels(status_code: int | None) -> tuple[str, str]:
    """The series' labels of an attempt: its outcome (`delivered`: a 2xx answer; `failed`: anything else) and
    its status class (`2xx`... `5xx`, or `none` when there was no answer)."""
    status_class = f"{status_code // 100}xx" if status_code is not None else "none"
    return ("delivered" if status_class == "2xx" else "failed"), status_class
