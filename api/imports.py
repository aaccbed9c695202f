"""Importing the cases already open (`POST /v1/import/cases`, `danvan import cases FILE`; docs/import.md).

A JSON Lines file, one `domain.petitions.imports.ImportedCase` a line. Each line is read, held to the edge's rules
(text, the calendar's years), and replayed through the petition's decider on the rules its workflow will load,
here, before anything is stored: a line the rules refuse is reported with its number and rule, and nothing of it
is sealed or started. A line that passes has its petitioner sealed (as `POST /v1/petitions` does) and its case
started with its steps (update-with-start, the same case id as the petition would have, so a second import of
the line finds its case: `already`). Lines are imported a few at a time; `progress` is told after each.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from temporalio.client import Client

from activities.rules import CaseRulesRequest, RulesActivities
from domain.calendar import local_date
from domain.common import DomainError
from domain.petitions.imports import ImportedCase, replay
from domain.petitions.model import petition_case_id
from domain.text import faults
from eventstore import EventStore
from workflows.client import CommandRefused, OutcomeUnknown, open_petition
from workflows.shared import TASK_QUEUE

from .identities import IdentityConflict, IdentityErased, IdentityVault
from .limits import dates_out_of_range

#: How many lines are imported at once.
CONCURRENCY = 8
#: How many times a line whose case did not answer in time is sent again.
RETRIES = 4


class Refusal(BaseModel):
    line: int
    rule: str
    message: str
    external_ref: str | None = None


class ImportReport(BaseModel):
    """What an import did: lines imported, already there, refused (each with its line and rule), by reason."""

    lines: int = 0
    imported: int = 0
    already: int = 0
    refused: int = 0
    by_reason: dict[str, int] = Field(default_factory=dict)
    refusals: list[Refusal] = Field(default_factory=list)
    case_ids: list[str] = Field(default_factory=list)


class LineRefused(Exception):
    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule, self.message = rule, message


def parse_line(text: str, years: tuple[int, int]) -> ImportedCase:
    """One line, read and held to the edge's rules, or `LineRefused` naming the field and the rule."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LineRefused("json_invalid", f"not JSON: {exc.msg} at column {exc.colno}") from None
    for place, rule, message in faults(raw):
        raise LineRefused(rule, f"{'.'.join(map(str, place))}: {message}")
    try:
        line = ImportedCase.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise LineRefused(first["type"], f"{where}: {first['msg']}") from None
    if problems := dates_out_of_range(line, *years):
        raise LineRefused(problems[0].rule, f"{problems[0].field}: {problems[0].message}")
    return line


class Importer:
    """Imports lines into one installation: its Temporal, its identity vault and its rules."""

    def __init__(self, client: Client, vault: IdentityVault, rules: RulesActivities, *,
                 task_queue: str = TASK_QUEUE, store: EventStore | None = None) -> None:
        self.client, self.vault, self.rules, self.task_queue = client, vault, rules, task_queue
        self.store = store
        self.began = datetime.now(UTC)

    async def run(self, lines: Iterable[str], progress: Callable[[ImportReport], None] | None = None) -> ImportReport:
        report = ImportReport()
        reasons: Counter[str] = Counter()
        limit = asyncio.Semaphore(CONCURRENCY)

        async def one(number: int, text: str) -> None:
            async with limit:
                outcome = await self.line(number, text)
            if isinstance(outcome, Refusal):
                report.refused += 1
                reasons[outcome.rule] += 1
                report.refusals.append(outcome)
            elif outcome[1]:
                report.imported += 1
                report.case_ids.append(outcome[0])
            else:
                report.already += 1
                report.case_ids.append(outcome[0])
            if progress is not None:
                progress(report)

        tasks = []
        for number, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            report.lines += 1
            tasks.append(one(number, text))
        await asyncio.gather(*tasks)
        report.by_reason = dict(sorted(reasons.items()))
        report.refusals.sort(key=lambda r: r.line)
        return report

    async def line(self, number: int, text: str) -> Refusal | tuple[str, bool]:
        """One line: `(case_id, created)`, or its refusal."""
        ref = None
        try:
            line = parse_line(text, self.rules.years)
            ref = line.intake.external_ref
            case_id = petition_case_id(line.intake.source, line.intake.external_ref)
            await self.check(case_id, line)
            return case_id, await self.start(case_id, line)
        except LineRefused as exc:
            return Refusal(line=number, rule=exc.rule, message=exc.message, external_ref=ref)

    async def check(self, case_id: str, line: ImportedCase) -> None:
        """The line replayed through the decider on the rules the case's workflow will load."""
        try:
            rules = await self.rules.load_case_rules(
                CaseRulesRequest(received_on=local_date(line.intake.received_at)))
            replay(case_id, line, rules, datetime.now(UTC))
        except DomainError as exc:
            raise LineRefused(exc.rule, exc.message) from None
        except Exception as exc:  # the rules activity refuses a receipt outside the calendar's years
            rule = getattr(exc, "type", None) or "import.invalid"
            raise LineRefused(str(rule), str(exc)) from None

    async def start(self, case_id: str, line: ImportedCase) -> bool:
        """Seal the petitioner, start the case with its steps and wait until it is open: whether it is new."""
        intake = line.intake
        try:
            sealed = await self.vault.seal(case_id, intake.source, intake.external_ref, intake.petitioner)
        except IdentityConflict:
            raise LineRefused("petition.conflict", "this source and external_ref were already received with "
                                                   "another petitioner") from None
        except IdentityErased:
            raise LineRefused("identity.erased", "this case was received before and its petitioner's identity "
                                                 "has been erased") from None
        intake = intake.model_copy(update={"petitioner": sealed})
        try:
            result = await self.open(intake, line)
        except (CommandRefused, OutcomeUnknown) as exc:
            if isinstance(exc, CommandRefused) and sealed.ref is not None:
                await self.vault.discard_unopened(sealed.ref, case_id)
            rule = exc.rule if isinstance(exc, CommandRefused) else "unavailable"
            raise LineRefused(rule, str(exc)) from None
        return bool(result.created)

    async def open(self, intake: Any, line: ImportedCase) -> Any:
        """Start the case, sent again when Temporal did not answer in time (the same case id: started once). A
        case found by a second attempt was started by the first, unless the store held it before."""
        for attempt in range(RETRIES):
            try:
                result = await open_petition(self.client, intake, task_queue=self.task_queue,
                                             imported=list(line.steps))
            except OutcomeUnknown:
                if attempt == RETRIES - 1:
                    raise
                await asyncio.sleep(0.5 * 2 ** attempt)
                continue
            if attempt and not result.created and self.store is not None:
                first = await self.store.pool.fetchval(
                    "SELECT min(recorded_at) FROM events WHERE stream_id = $1", result.case.case_id)
                started = self.began
                result = result.model_copy(update={"created": first is not None and first >= started})
            return result
        raise AssertionError("unreachable")


def read_lines(data: bytes | str) -> list[str]:
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    return text.splitlines()


def summary(report: ImportReport) -> dict[str, Any]:
    return report.model_dump(exclude={"case_ids"})
