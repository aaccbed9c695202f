"""Temporal list filters (visibility queries), built only from validated values.

This is the one place that writes the text of a visibility query (`client.list_workflows`, `count_workflows`);
nothing a user sends is ever spliced into one. A query is a conjunction of `attribute = 'value'` conditions:
the attribute comes from a fixed allow-list (`ATTRIBUTES`), the value is checked by `literal`.

How Temporal reads a string literal: its list filter is parsed as SQL (a `WHERE` clause) with MySQL's
lexical rules, so in `'...'` a backslash escapes the character after it and `''` stands for `'`. The parsed
value is then written back into the SQL of the visibility store. On the dev server's SQLite store (what
`danvan up` and the tests run) that second step writes MySQL escapes that SQLite reads literally, so a value
holding a backslash or a double quote never matches what it says there (`a"b` matches nothing, `a\\b`
matches the stored `a\\\\b`), while on PostgreSQL, MySQL or Elasticsearch visibility it would. Rather than
an escaping that is right on one store and wrong on another, `literal` refuses every value holding `'`,
`"`, `\\` or a control character: the values the engine filters on (case kinds, statuses, body codes,
workflow ids) never hold them, and everything else, Vietnamese diacritics, `%` and `_` included, needs no
escaping at all and matches exactly (`=` on a Keyword is an exact comparison, not a pattern).
`tests/api/test_filters.py` holds each of these to the real dev server.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: The attributes a condition may name: Temporal's own and the search attributes the engine registers
#: (`workflows.shared.SEARCH_ATTRIBUTES`).
ATTRIBUTES = frozenset({
    "ExecutionStatus", "WorkflowId", "WorkflowType",
    "CaseKind", "CaseStatus", "LeadBody", "District",
})
#: What a value may hold: no quote of either kind, no backslash, no control character (C0, DEL, C1); 1 to
#: 200 characters (a Keyword search attribute is far longer, the engine's values far shorter).
SAFE_VALUE = re.compile(r"[^'\"\\\x00-\x1f\x7f-\x9f]{1,200}")
#: Temporal's own values of `ExecutionStatus`.
EXECUTION_STATUSES = frozenset({"Running", "Completed", "Failed", "Canceled", "Terminated", "ContinuedAsNew",
                                "TimedOut"})


class UnsafeValue(ValueError):
    """A value the builder will not put into a visibility query."""


def literal(value: str) -> str:
    """`value` as a single-quoted string literal of a Temporal list filter; `UnsafeValue` unless it matches
    `SAFE_VALUE` (see the module's docstring for why nothing is escaped)."""
    if not isinstance(value, str) or not SAFE_VALUE.fullmatch(value):
        raise UnsafeValue(f"not a value for a Temporal list filter (1 to 200 characters, no quote, backslash or "
                          f"control character): {value!r}")
    return f"'{value}'"


def equals(attribute: str, value: str) -> str:
    """The condition `attribute = 'value'`, the attribute one of `ATTRIBUTES`."""
    if attribute not in ATTRIBUTES:
        raise UnsafeValue(f"not an attribute the engine filters on: {attribute!r}")
    if attribute == "ExecutionStatus" and value not in EXECUTION_STATUSES:
        raise UnsafeValue(f"not an execution status: {value!r}")
    return f"{attribute} = {literal(value)}"


def all_of(conditions: Iterable[str]) -> str:
    """The conditions (each made by `equals`) joined with AND."""
    return " AND ".join(conditions)


#: The running workflows Temporal's visibility flags as stuck (a fixed condition, no value in it from outside):
#: * `TemporalReportedProblems`: the server sets it on a workflow whose workflow task failed or timed out
#:   `system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute` times in a row (its values are
#:   `category=WorkflowTaskFailed` or `category=WorkflowTaskTimedOut`, and `cause=...`), and removes it once
#:   a workflow task completes;
#: * `TemporalPauseInfo`: set while an activity of the workflow is paused (`property:activityType=<type>`...).
#: The bundled dev server (temporal CLI 1.9.1, server 1.32.0) supports both in list queries. `danvan up` and the
#: tests set that threshold to 2 (`ops.stalled.SERVER_DYNAMIC_CONFIG`); the server's default, 5, flags a
#: workflow about a minute later. `tests/ops/test_stalled_scan.py` holds both to the real dev server.
FLAGGED = ("(TemporalReportedProblems IN ('category=WorkflowTaskFailed', 'category=WorkflowTaskTimedOut')"
           " OR TemporalPauseInfo IS NOT NULL)")


def flagged(**values: str | None) -> str:
    """`query(**values)` and `FLAGGED`: the workflows of the filter that visibility flags as stuck."""
    return all_of([query(**values), FLAGGED] if any(v is not None for v in values.values()) else [FLAGGED])


def query(**values: str | None) -> str:
    """`attribute = 'value'` for every attribute given a value (None: no condition), joined with AND:
    `query(ExecutionStatus="Running", CaseKind="complaint")`."""
    return all_of(equals(attribute, value) for attribute, value in values.items() if value is not None)
