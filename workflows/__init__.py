"""Temporal workflows, one module per case kind, the webhook subscriptions' and the repair jobs'.
`ALL_WORKFLOWS` is what the worker registers.

The modules are imported when a name is first asked of the package, not with it: Temporal's sandbox imports a
workflow's module afresh for every new workflow it runs, the package with it, and importing every workflow
module there (their pydantic models are built as they are imported) cost a new petition about 20 ms of the
worker's CPU for modules it never uses.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .front_supervision import FrontSupervisionWorkflow
    from .petition import PetitionWorkflow
    from .plan import PlanWorkflow
    from .plan_task import PlanTaskWorkflow
    from .repair_job import RepairJobWorkflow
    from .report_cycle import ReportCycleWorkflow
    from .subscription import SubscriptionWorkflow

    ALL_WORKFLOWS: list[type[Any]]

#: Each workflow class and the module that defines it, in the order the worker registers them.
_MODULES = {
    "PetitionWorkflow": ".petition",
    "FrontSupervisionWorkflow": ".front_supervision",
    "PlanTaskWorkflow": ".plan_task",
    "PlanWorkflow": ".plan",
    "ReportCycleWorkflow": ".report_cycle",
    "SubscriptionWorkflow": ".subscription",
    "RepairJobWorkflow": ".repair_job",
}

__all__ = [
    "ALL_WORKFLOWS", "FrontSupervisionWorkflow", "PetitionWorkflow", "PlanTaskWorkflow", "PlanWorkflow",
    "RepairJobWorkflow", "ReportCycleWorkflow", "SubscriptionWorkflow",
]


def __getattr__(name: str) -> Any:
    if name == "ALL_WORKFLOWS":
        found = [getattr(import_module(module, __name__), cls) for cls, module in _MODULES.items()]
        globals()[name] = found  # one list, as when it was built at import
        return found
    if name in _MODULES:
        return getattr(import_module(_MODULES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
