"""How a case workflow gets its rules by digest (`domain.rulesets`): deterministically, wherever it runs.

`case_rules` asks the `case_rules_ref` activity for the ref of the rules in force (their documents are then in
`rule_sets`), and resolves it from `activities.rules.RULE_BOOK`, this worker's documents by digest. A document
the book lacks is fetched by the `rule_documents` activity and checked against its digest before it is kept.
Whether a run fetched is recorded by the marker `rules-fetched` before the fetch: a replay takes the fetch (and
its answer) from the history when the marker is there, and never adds one when it is not. A worker puts every
document of `rule_sets` in its book before it polls (`activities.rules.load_rule_book`), so that it replays the
cases other workers started; a replay that still lacks a document (stored after the worker started) and finds
no fetch in its history fails its workflow task; the worker notes the digest
(`RuleBook.wanted`) and fetches it meanwhile (`activities.rules.keep_rule_book`), and the retried task goes on.
"""

from __future__ import annotations

from collections.abc import Iterable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.rules import (
        RULE_BOOK,
        CaseRulesRequest,
        PlanRulesRequest,
        RuleDocumentsRequest,
        RulesActivities,
    )
    from domain.deadlines import CaseRules
    from domain.plan_tasks import PlanRules
    from domain.reporting import ReportCalendar
    from domain.rulesets import PlanRulesRef, RulesRef

    from .case import ACTIVITY_TIMEOUT, APPEND_RETRY

#: Since this patch a case records its rules by digest (`rules_ref`) in its first event, instead of in full.
RULES_BY_DIGEST = "rules-by-digest"
#: Recorded when a run lacked some of its rule documents and fetched them by activity.
RULES_FETCHED = "rules-fetched"


async def case_rules(request: CaseRulesRequest) -> tuple[CaseRules, RulesRef]:
    """The rules in force for `request`, resolved, and their ref."""
    ref = await workflow.execute_activity_method(
        RulesActivities.case_rules_ref, request, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=APPEND_RETRY,
    )
    return await resolve(ref), ref


async def plan_rules(request: PlanRulesRequest) -> tuple[PlanRules, PlanRulesRef]:
    """The rules a plan task runs on for `request`, resolved, and their ref."""
    ref = await workflow.execute_activity_method(
        RulesActivities.plan_rules_ref, request, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=APPEND_RETRY,
    )
    await _fetch_missing(ref.documents())
    reports = RULE_BOOK.model(ref.reports)
    assert isinstance(reports, ReportCalendar)
    return PlanRules(case=RULE_BOOK.case_rules(ref.case), reports=reports), ref


async def started_case_rules(request: CaseRulesRequest) -> tuple[CaseRules, RulesRef | None]:
    """The rules a case starts under: by digest since `rules-by-digest` (with their ref), else in full as the
    runs recorded before the patch loaded them (no ref)."""
    if workflow.patched(RULES_BY_DIGEST):  # the first event names the rules by digest
        return await case_rules(request)
    rules = await workflow.execute_activity_method(
        RulesActivities.load_case_rules, request, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=APPEND_RETRY,
    )
    return rules, None


async def started_plan_rules(request: PlanRulesRequest) -> tuple[PlanRules, PlanRulesRef | None]:
    """A plan's or plan task's rules, as `started_case_rules` gives a case's."""
    if workflow.patched(RULES_BY_DIGEST):  # the rules by digest: the history holds no copy of them
        return await plan_rules(request)
    rules = await workflow.execute_activity_method(
        RulesActivities.load_plan_rules, request, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=APPEND_RETRY,
    )
    return rules, None


async def resolve(ref: RulesRef) -> CaseRules:
    """The rules `ref` names, from the worker's book, fetching (and checking) the documents it lacks."""
    await _fetch_missing(ref.documents())
    return RULE_BOOK.case_rules(ref)


async def _fetch_missing(documents: Iterable[str]) -> None:
    missing = sorted(d for d in documents if d not in RULE_BOOK)
    if (missing or workflow.unsafe.is_replaying()) and workflow.patched(RULES_FETCHED):
        found = await workflow.execute_activity_method(
            RulesActivities.rule_documents, RuleDocumentsRequest(digests=missing),
            start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=APPEND_RETRY,
        )
        for doc in found.documents:
            RULE_BOOK.add(doc)  # refused unless its content hashes to its digest
