"""Importing a case already open elsewhere: its intake and the steps it went through, each replayed through the
petition's own decider at the moment it happened, so that its deadlines and state are those danvan would have
computed had it recorded them live (docs/import.md).

A line of the import file is an `ImportedCase`. `replay` decides its receipt at `received_at`, then, step by step,
the deadline timers that came due before the step (as the case's workflow would have fired them) and the step
itself at its `at`. Pure: the API and the command line run it first to refuse a line before anything is stored,
and the case's workflow runs it again on the rules it loads, then stores every event in one append.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, cast

from pydantic import Field

from .. import coordination as co
from ..common import SYSTEM, Actor, DomainError, Event, Text, require
from ..deadlines import CaseRules, MarkDeadline, timer_moments
from ..jsontypes import Moment
from . import commands as c
from .decider import CLOCK_SKEW, decide, fold
from .model import PetitionIntake, PetitionState

#: The commands a step may be: a person's commands (never the workflow's own `receive` and `deadline`), and not
#: those that start other cases (a split, an appeal, the Front's supervision), which an import does not open.
StepCommand = Annotated[
    c.Classify | c.Accept | c.Reject | c.Forward | c.Redirect | c.Assign | co.RequestCoordination | co.Respond
    | c.RecordVerification | c.RecordDialogue | c.Extend | c.Suspend | c.Resume | c.Withdraw | c.Decide
    | c.Notify | c.RecordImplementation | c.RecordExternalResult | c.Close | c.Archive,
    Field(discriminator="type"),
]
MAX_STEPS = 100


class ImportedStep(Text):
    """One step the case went through: the command as the API takes it (a written act with its `dated`), and
    when it was recorded in the system the case comes from."""

    at: Moment = Field(description="when the step was recorded in the system the case comes from, with its offset")
    command: StepCommand


class ImportedCase(Text):
    """One line of an import file: a case already open, its intake and its steps so far, oldest first."""

    intake: PetitionIntake
    steps: list[ImportedStep] = Field(default_factory=list, max_length=MAX_STEPS)


class StepRefused(DomainError):
    """A step (1-based; 0: the receipt) the rules refuse; `rule` is the decider's."""

    def __init__(self, step: int, error: DomainError) -> None:
        super().__init__(error.rule, f"step {step}: {error.message}" if step else error.message)
        self.step = step


def importer(source: str) -> Actor:
    """Who the imported steps are recorded as: the system they come from."""
    return Actor(id=f"import:{source}"[:200], role="system")


def replay(case_id: str, line: ImportedCase, rules: CaseRules, now: datetime,
           rules_ref: Any = None) -> list[Event]:
    """Every event the case would have recorded, from its receipt to its last step, or `StepRefused`."""
    intake: PetitionIntake = line.intake
    try:
        receive = c.Receive(case_id=case_id, intake=intake, rules=rules, rules_ref=rules_ref)
        events = decide(None, receive, SYSTEM, intake.received_at)
    except DomainError as exc:
        raise StepRefused(0, exc) from exc
    state = fold(events)
    assert state is not None
    actor, previous = importer(intake.source), intake.received_at
    for number, step in enumerate(line.steps, start=1):
        try:
            require(step.at >= previous, "import.steps_order",
                    f"the step at {step.at.isoformat()} comes before the one it follows ({previous.isoformat()})")
            require(step.at <= now + CLOCK_SKEW, "import.step_future", f"the step at {step.at.isoformat()} is in "
                                                                       "the future")
            state, fired = _timers_until(state, step.at)
            decided = decide(state, cast(Any, step.command), actor, step.at)
        except DomainError as exc:
            raise StepRefused(number, exc) from exc
        state = _folded(decided, state)
        events += fired + decided
        previous = step.at
    return events


def _folded(events: list[Event], state: PetitionState) -> PetitionState:
    folded = fold(events, state)
    assert folded is not None
    return folded


def _timers_until(state: PetitionState, until: datetime) -> tuple[PetitionState, list[Event]]:
    """The deadline timers that came due up to `until`, each decided at its moment as the workflow fires them."""
    fired: list[Event] = []
    tried: set[tuple[str, str]] = set()
    while state.status != "archived":
        due = [(at, key, stage) for at, key, stage in timer_moments(state.deadlines)
               if at <= until and (key, stage) not in tried]
        if not due:
            break
        at, key, stage = due[0]
        tried.add((key, stage))
        decided = decide(state, cast(Any, MarkDeadline(key=key, stage=stage)), SYSTEM, at)
        if decided:
            state = _folded(decided, state)
            fired += decided
    return state, fired
