"""What a repair job is made of, as its workflow, its activities and the API pass it around (`ops.jobs`).

Pure models: the workflow (`workflows.repair_job`) imports them in its sandbox. A job is one repair (`retry`,
`reset`, `nudge`, `reassign`) of a fixed list of cases, with the reason and the rate it was asked for, who asked
and, when it needs one, who approved it.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from domain.common import Actor, Text
from domain.repairs import MIN_REASON, REPAIR_ROLES, RepairAction, stated_reason

JobState = Literal["awaiting_approval", "running", "paused", "completed", "cancelled", "rejected"]
JOB_STATES: tuple[JobState, ...] = ("awaiting_approval", "running", "paused", "completed", "cancelled", "rejected")
#: The states a job no longer leaves.
ENDED_STATES: frozenset[str] = frozenset({"completed", "cancelled", "rejected"})
Outcome = Literal["pending", "done", "refused", "failed"]
OUTCOMES: tuple[Outcome, ...] = ("pending", "done", "refused", "failed")
Decision = Literal["approve", "reject", "pause", "resume", "cancel"]
DECISIONS: tuple[Decision, ...] = ("approve", "reject", "pause", "resume", "cancel")
JobActionName = Literal["request", "approve", "reject", "pause", "resume", "cancel", "complete"]

#: A job's rate, in cases a second: its bounds and default.
MIN_RATE = 0.01
MAX_RATE = 50.0
DEFAULT_RATE = 5.0
#: The most cases one job may hold.
MAX_CASES = 5000
#: Cases one run of the workflow works through before it continues as new (its history stays short).
CONTINUE_AFTER = 100
ID_PATTERN = r"^job_[0-9a-z]{20}$"
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"

#: The rules a job's decisions are refused by (the `type` of the Update's ApplicationError, the API's `code`).
SELF_APPROVAL = "job.self_approval"
STATE_RULE = "job.state"
ROLE_RULE = "job.role"


def job_id_from(seed: bytes) -> str:
    """`job_` and 20 base-36 digits of SHA-256(seed): the same requester and key name the same job."""
    number = int.from_bytes(hashlib.sha256(seed).digest(), "big")
    digits = []
    for _ in range(20):
        number, digit = divmod(number, 36)
        digits.append(_ALPHABET[digit])
    return "job_" + "".join(digits)


def workflow_id(job_id: str) -> str:
    return f"repair-job-{job_id}"


def needs_approval(action: str, count: int, threshold: int) -> bool:
    """Four eyes: a reset of any case, and any job of more than `threshold` cases."""
    return action == "reset" or count > threshold


def case_key(job_id: str, position: int) -> str:
    """The command id (idempotency key) of the job's repair of its case at `position`: a retried activity
    records it once."""
    return f"{job_id}:{position}"


class JobSpec(BaseModel):
    """A job as it was asked for, with its fixed target set (`case_ids`, in the order it works through them)."""

    job_id: str = Field(pattern=ID_PATTERN)
    action: RepairAction
    body: str | None = None
    reason: str = Field(min_length=MIN_REASON, max_length=2000)
    rate: float = Field(ge=MIN_RATE, le=MAX_RATE)
    case_ids: list[str] = Field(max_length=MAX_CASES)
    requester: Actor
    requested_at: datetime
    needs_approval: bool
    target: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = None
    request_digest: str = ""


class Approval(BaseModel):
    """Who approved a job (their label), why and when."""

    by: str
    reason: str
    at: datetime


class JobCounts(BaseModel):
    done: int = 0
    refused: int = 0
    failed: int = 0

    def add(self, outcome: str) -> JobCounts:
        if outcome not in ("done", "refused", "failed"):
            return self
        return self.model_copy(update={outcome: getattr(self, outcome) + 1})


class JobStart(BaseModel):
    """The workflow's input: the job, where it is in its list, and what it did (carried over continue-as-new)."""

    spec: JobSpec
    state: JobState
    next: int = 0
    counts: JobCounts = JobCounts()
    #: Actions recorded so far after the request (seq 0): the next one is seq + 1.
    seq: int = 0
    approval: Approval | None = None
    #: The job's rows were written (its first activity ran).
    opened: bool = False
    #: Cases a run works through before it continues as new.
    continue_after: int = Field(default=CONTINUE_AFTER, ge=1)


class JobDecision(Text):
    """An operator's decision on a job (approve, reject, pause, resume, cancel), with its reason."""

    actor: Actor
    reason: str = Field(min_length=MIN_REASON, max_length=2000)

    @field_validator("reason")
    @classmethod
    def _said_something(cls, value: str) -> str:
        return stated_reason(value, "a decision on a job")

    @property
    def may_decide(self) -> bool:
        return self.actor.role in REPAIR_ROLES


class JobProgress(BaseModel):
    """What the workflow holds: its state, how far it got and the outcomes so far."""

    job_id: str
    state: JobState
    total: int
    next: int
    counts: JobCounts
    approval: Approval | None = None


class CaseTask(BaseModel):
    """One case of a job, as the job's activity repairs it."""

    job_id: str
    position: int
    case_id: str
    action: RepairAction
    body: str | None = None
    reason: str
    requester: Actor
    #: Added to the RepairRecorded event's detail: the job, who requested and who approved it, and why.
    note: dict[str, Any] = Field(default_factory=dict)


class CaseResult(BaseModel):
    outcome: Outcome
    rule: str | None = None
    error: str | None = None
    version: int | None = None


class ActionRecord(BaseModel):
    """One action on a job, to be written into `repair_job_actions` and the job's row."""

    job_id: str
    seq: int
    action: JobActionName
    actor: str
    reason: str | None = None
    at: datetime
    state: JobState
    #: The action approves or rejects the job: its row keeps who, why and when.
    decided: bool = False
    #: The job starts working (or ends) with this action.
    started: bool = False
    finished: bool = False
