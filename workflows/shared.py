"""Names shared by every Temporal client and worker: the task queue and the search attributes."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

TASK_QUEUE = "danvan"

CASE_KIND = SearchAttributeKey.for_keyword("CaseKind")
CASE_STATUS = SearchAttributeKey.for_keyword("CaseStatus")
LEAD_BODY = SearchAttributeKey.for_keyword("LeadBody")
DISTRICT = SearchAttributeKey.for_keyword("District")
DUE_AT = SearchAttributeKey.for_datetime("DueAt")
OVERDUE = SearchAttributeKey.for_bool("Overdue")

#: Name -> Temporal type, as the dev server's `--search-attribute NAME=TYPE` and the operator API take them.
SEARCH_ATTRIBUTES: dict[str, str] = {
    "CaseKind": "Keyword",
    "CaseStatus": "Keyword",
    "LeadBody": "Keyword",
    "District": "Keyword",
    "DueAt": "Datetime",
    "Overdue": "Bool",
}
