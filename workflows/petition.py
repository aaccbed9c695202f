"""`PetitionWorkflow`: one citizen petition, from receipt to archive, as an event-sourced Temporal workflow.

The workflow is the single writer of its case's stream (stream id = workflow id = case id). Every command is
an Update whose validator runs the pure `decide`; accepted commands append their events through the event
store activity (with the `cases` projection, in one transaction) and only then move the state. Deadlines are
durable timers: when one comes due, the workflow issues itself a `deadline` command, decided like any other.
The shared machinery is `workflows.case.CaseMachine`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RawValue, SearchAttributePair, SearchAttributeUpdate, TypedSearchAttributes
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.rules import CaseRulesRequest
    from domain.authority import PETITION, authorize, for_command, petition_facts
    from domain.calendar import local_date
    from domain.common import SYSTEM, Actor, DomainError, Event, EventRegistry
    from domain.coordination import owing
    from domain.deadlines import MarkDeadline
    from domain.idempotency import SeenCommand
    from domain.petitions import REGISTRY
    from domain.petitions import commands as c
    from domain.petitions import events as e
    from domain.petitions.decider import decide, fold, intake_digest, same_petition
    from domain.petitions.imports import ImportedCase, ImportedStep, replay
    from domain.petitions.model import PetitionIntake, PetitionState, PetitionStatus
    from domain.petitions.views import CaseView, case_row, case_view
    from domain.text import faults
    from eventstore.models import CaseRow

    from .case import (
        MAX_HISTORY_EVENTS,
        CaseMachine,
        Stage,
        input_refusal,
        named_request,
        refusal,
    )
    from .rulebook import started_case_rules
    from .shared import CASE_KIND, CASE_STATUS, DISTRICT, DUE_AT, LEAD_BODY, OVERDUE


#: Since this patch a petition decides by the legal-periods revision (`domain.petitions.decider.decide`,
#: `revised`): a denunciation is extended by its complexity, each extension a dated decision lengthening the
#: period from acceptance; a suspension stops the clocks its kind's policy says it stops (no timer is set for a
#: stopped deadline) and the resumption records the new due dates; a forwarded petition's forwarding body has
#: its notice deadline; a recommendation received in person has the reception's answer period. Runs recorded
#: before it replay on the old rules, and keep their due dates.
LEGAL_PERIODS = "legal-periods"
#: Since this patch a petition whose receipt is refused (its rules cannot be had for its date, its events cannot
#: be stored as they are, the decider refuses it) ends its run with nothing stored and the refusal answered,
#: instead of failing its workflow task again and again.
REFUSED_RECEIPT = "refused-receipt"
#: Since this patch a petition also owes the periods the law sets that no rule held before (the decider's
#: `completed`): the notices of a denunciation's suspension, termination and conclusion and its publication, a
#: repeated denunciation's 20 days at the superior, the second-instance complaint decision's own delivery period
#: and the day a complaint decision takes legal effect (from which it is carried out), the citizen reception's
#: notices to the body that forwarded a recommendation, and a voters' petition's coordination period. Each also
#: needs its rule in the case's recorded policy. Runs recorded before it replay as they were decided.
PERIODS_COMPLETED = "periods-completed"


class PetitionStart(BaseModel):
    """How a petition case starts: the intake (and, for a continued run, the state carried over)."""

    intake: PetitionIntake
    instance: int = 1
    parent_case_id: str | None = None
    carried_state: PetitionState | None = None
    seen_commands: dict[str, int] = Field(default_factory=dict)
    #: The digests of the request applied under each key (`domain.idempotency`), carried with `seen_commands`.
    seen_digests: dict[str, SeenCommand] = Field(default_factory=dict)
    #: Continue as new past this many history events (lower it in tests to exercise the hand-over).
    history_limit: int = Field(default=MAX_HISTORY_EVENTS, ge=50)
    #: A case imported open (`domain.petitions.imports`): the steps it went through before, replayed through the
    #: decider at their moments and stored with its receipt in one append.
    imported: list[ImportedStep] | None = None


class ReceiveRequest(BaseModel):
    """The first Update of `POST /v1/petitions` (sent with the start): answers once the case is open."""

    intake: PetitionIntake


class CommandResult(BaseModel):
    case: CaseView
    events: list[str] = Field(default_factory=list)
    duplicate: bool = False
    created: bool = False


@workflow.defn
class PetitionWorkflow(CaseMachine[PetitionState]):
    """A complaint, denunciation, recommendation or voters' petition, with its statutory deadlines."""

    @workflow.init
    def __init__(self, start: PetitionStart) -> None:
        self.start = start
        self.setup(start.carried_state, start.seen_commands, start.history_limit, seen_digests=start.seen_digests)
        self.receive_answered = start.carried_state is not None
        #: Why the petition could not be received (its run then ends with nothing stored).
        self.refused: DomainError | None = None

    # -- the run --------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, start: PetitionStart) -> CaseView | None:
        if self.state is None:
            try:
                await self.receive_intake(start)
            except (DomainError, ActivityError) as exc:
                refused = input_refusal(exc)
                if refused is None or not workflow.patched(REFUSED_RECEIPT):
                    raise
                # Nothing was stored: the run ends, the sender learns why, and a corrected petition under the
                # same source and external_ref starts a new run.
                workflow.logger.warning("petition %s not received: %s", workflow.info().workflow_id, refused)
                self.refused = refused
                await workflow.wait_condition(workflow.all_handlers_finished)
                return None
        await self.wait_until_finished(
            SYSTEM, lambda: start.model_copy(update={"carried_state": self.state, "seen_commands": self.seen,
                                          "seen_digests": self.seen_digests})
        )
        assert self.state is not None
        return case_view(self.state)

    async def receive_intake(self, start: PetitionStart) -> None:
        """Load the case's rules and record its receipt (the first event), unless its text is such that no case
        may hold it (`domain.text`): a sender that reaches Temporal without the API is refused here."""
        if workflow.patched(REFUSED_RECEIPT):
            for place, rule, message in faults(start.intake):
                raise DomainError(rule, f"{'.'.join(map(str, place))}: {message}")
        request = CaseRulesRequest(received_on=local_date(start.intake.received_at))
        rules, ref = await started_case_rules(request)
        if start.imported is not None:
            await self.receive_imported(start, rules, ref)
            return
        receive = c.Receive(
            case_id=workflow.info().workflow_id, intake=start.intake, instance=start.instance,
            parent_case_id=start.parent_case_id, rules=rules, rules_ref=ref,
        )
        async with self.lock:
            await self.apply(receive, SYSTEM, "receive")

    async def receive_imported(self, start: PetitionStart, rules: Any, ref: Any = None) -> None:
        """An imported case: its receipt and every step so far, decided again at their moments on the rules just
        loaded (as the importer decided them before starting the case), stored in one append."""
        line = ImportedCase(intake=start.intake, steps=start.imported or [])
        events = replay(workflow.info().workflow_id, line, rules, workflow.now(), rules_ref=ref)

        async def again() -> list[Event]:
            return []  # a reset run finds its stored events: they are the ones just adopted

        async with self.lock:
            await self.store(events, "receive", None, retry=again)

    # -- the domain, for the machinery ----------------------------------------------------------------

    def decide(self, state: PetitionState | None, command: Any, actor: Actor, now: datetime) -> list[Event]:
        # A validator (read-only, never replayed) decides by today's rules; a handler asks the patch, so that a
        # run recorded before it decides again as it did.
        if workflow.unsafe.is_read_only():
            return decide(state, command, actor, now)
        revised = workflow.patched(LEGAL_PERIODS)
        completed = workflow.patched(PERIODS_COMPLETED)
        return decide(state, command, actor, now, revised=revised, completed=completed)

    def fold(self, events: Any, state: PetitionState | None) -> PetitionState:
        folded = fold(events, state)
        assert folded is not None
        return folded

    def stream_id(self, state: PetitionState) -> str:
        return state.case_id

    def projection(self, state: PetitionState) -> CaseRow:
        """The `cases` row, with the facts the API checks a command's sender against before sending it."""
        row = case_row(state)
        row["summary"]["authority"] = petition_facts(state).model_dump(mode="json")
        return CaseRow.model_validate(row)

    def deadline_command(self, key: str, stage: Stage) -> MarkDeadline:
        return MarkDeadline(key=key, stage=stage)

    def registry(self) -> EventRegistry:
        return REGISTRY

    def owing_bodies(self, state: PetitionState) -> list[str]:
        lead = [state.lead_body] if state.lead_body and state.open else []
        return lead + [b for b in owing(state.coordination) if b not in lead]

    def authorize(self, state: PetitionState, command: Any, actor: Actor) -> None:
        authorize(PETITION, command.type, actor, for_command(PETITION, command, petition_facts(state)))

    def reassign(self, state: PetitionState, body: str, actor: Actor, now: datetime, reason: str) -> list[Event]:
        return decide(state, c.Assign(body=body, reason=reason), actor, now)

    def finished(self) -> bool:
        return self.state is not None and self.state.status == PetitionStatus.ARCHIVED

    def search_attributes(self, state: PetitionState) -> list[SearchAttributeUpdate[Any]]:
        """Kept current, so Temporal's list and Web UI filter real cases."""
        due = state.next_due
        return [
            CASE_KIND.value_set(state.kind.value), CASE_STATUS.value_set(state.status.value),
            OVERDUE.value_set(state.overdue),
            LEAD_BODY.value_set(state.lead_body) if state.lead_body else LEAD_BODY.value_unset(),
            DISTRICT.value_set(state.intake.district) if state.intake.district else DISTRICT.value_unset(),
            DUE_AT.value_set(due.due_at) if due else DUE_AT.value_unset(),
        ]

    async def after_append(self, events: list[Event]) -> None:
        """Start the linked cases an event calls for. Their ids are fixed, so a replay starts nothing twice."""
        assert self.state is not None
        for event in events:
            if isinstance(event, e.PetitionSplit):
                for child in event.children:
                    intake = self.state.intake.model_copy(update={
                        "kind": child["kind"], "subject": child["subject"], "content": child["content"],
                        "external_ref": f"{self.state.intake.external_ref}#{child['case_id'].rsplit('-', 1)[1]}",
                    })
                    await self._start_case(child["case_id"], PetitionStart(intake=intake,
                                                                           parent_case_id=self.state.case_id))
            elif isinstance(event, e.EscalatedSecondInstance):
                intake = self.state.intake.model_copy(update={
                    "external_ref": f"{self.state.intake.external_ref}#L2", "received_at": workflow.now(),
                    "receiving_body": event.to_body or self.state.intake.receiving_body,
                })
                await self._start_case(event.new_case_id, PetitionStart(intake=intake, instance=2,
                                                                        parent_case_id=self.state.case_id))
            elif isinstance(event, e.FrontSupervisionStarted):
                await self._start_supervision(event)

    async def _start_case(self, case_id: str, start: PetitionStart) -> None:
        await workflow.start_child_workflow(
            PetitionWorkflow.run, start, id=case_id, parent_close_policy=workflow.ParentClosePolicy.ABANDON,
        )

    async def _start_supervision(self, event: e.FrontSupervisionStarted) -> None:
        """Start the Front's supervision of this case (`FrontSupervisionWorkflow`, by name: no import cycle)."""
        assert self.state is not None
        due = self.state.next_due
        start = {
            "case_id": self.state.case_id, "trigger": event.trigger, "case_kind": self.state.kind.value,
            "resolver": self.state.lead_body,
            # The rules by digest when the case names them so (the supervision resolves them as the case did).
            **({"rules_ref": self.state.rules_ref.model_dump(mode="json")} if self.state.rules_ref else
               {"rules": self.state.rules.model_dump(mode="json")}),
            "watched_due": due.model_dump(mode="json") if due else None,
        }
        await workflow.start_child_workflow(
            "FrontSupervisionWorkflow", start, id=event.supervision_id,
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
        )

    def _result(self, events: list[Event], *, duplicate: bool = False, created: bool = False) -> CommandResult:
        assert self.state is not None
        return CommandResult(case=case_view(self.state), events=[ev.event_type() for ev in events],
                             duplicate=duplicate, created=created)

    # -- updates and queries --------------------------------------------------------------------------

    @workflow.update
    async def execute(self, request: c.CommandRequest) -> CommandResult:
        """Apply one command. A repeated `command_id` returns the current state and changes nothing."""
        return await self.apply_request(request)

    async def apply_request(self, request: c.CommandRequest) -> CommandResult:
        """The body of `execute` and of `command`."""
        events, duplicate = await self.handle(request.command, request.actor, request.command_id)
        return self._result(events, duplicate=duplicate)

    @execute.validator
    def validate_execute(self, request: c.CommandRequest) -> None:
        """Refuse, before anything enters the history, a command the law or the state does not allow."""
        self.validate(request.command, request.actor, request.command_id, internal=c.INTERNAL,
                      opening="case.opening")

    @workflow.update(dynamic=True)
    async def command(self, name: str, args: Sequence[RawValue]) -> CommandResult:
        """One command sent as an Update named after it (`classify`, `accept`...), so that Temporal's Web UI and
        the process history show what each step was; the same as `execute`, which older clients send."""
        return await self.apply_request(named_request(name, args, c.CommandRequest))

    @command.validator
    def validate_command(self, name: str, args: Sequence[RawValue]) -> None:
        self.validate_execute(named_request(name, args, c.CommandRequest))

    @workflow.update
    async def receive(self, request: ReceiveRequest) -> CommandResult:
        """Answer `POST /v1/petitions` once the case is open: its id and first deadlines."""
        await workflow.wait_condition(lambda: self.state is not None or self.refused is not None)
        if self.state is None and self.refused is not None:
            raise refusal(self.refused)
        created = not self.receive_answered
        self.receive_answered = True
        return self._result([], created=created)

    @receive.validator
    def validate_receive(self, request: ReceiveRequest) -> None:
        # Validators are not run on replay, so this may change without a patch.
        stored = self.state.intake if self.state is not None else self.start.intake
        digest = self.state.intake_digest if self.state is not None else intake_digest(self.start.intake)
        if not same_petition(stored, digest, request.intake):
            raise ApplicationError(
                "this source and external_ref were already received with different content",
                type="petition.conflict",
            )
        for place, rule, message in faults(request.intake):
            raise ApplicationError(f"{'.'.join(map(str, place))}: {message}", type=rule, non_retryable=True)

    @workflow.query
    def view(self) -> CaseView | None:
        return case_view(self.state) if self.state is not None else None

    @workflow.query
    def state_snapshot(self) -> PetitionState | None:
        """The whole state, for tests and operators (it equals the fold of the stream's events)."""
        return self.state


def search_attributes_for(kind: str) -> TypedSearchAttributes:
    """The attributes a petition starts with, so it is listed before its first event is written."""
    return TypedSearchAttributes([
        SearchAttributePair(CASE_KIND, kind), SearchAttributePair(CASE_STATUS, PetitionStatus.RECEIVED.value)
    ])
