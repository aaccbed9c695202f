"""Temporal workflows, one module per case kind, the webhook subscriptions' and the repair jobs'.
`ALL_WORKFLOWS` is what the worker registers."""

from typing import Any

from .front_supervision import FrontSupervisionWorkflow
from .petition import PetitionWorkflow
from .plan import PlanWorkflow
from .plan_task import PlanTaskWorkflow
from .repair_job import RepairJobWorkflow
from .report_cycle import ReportCycleWorkflow
from .subscription import SubscriptionWorkflow

ALL_WORKFLOWS: list[type[Any]] = [
    PetitionWorkflow,
    FrontSupervisionWorkflow,
    PlanTaskWorkflow,
    PlanWorkflow,
    ReportCycleWorkflow,
    SubscriptionWorkflow,
    RepairJobWorkflow,
]
