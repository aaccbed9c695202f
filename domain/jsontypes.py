"""Scalars that keep their JSON type, for the fields of what clients send.

pydantic's default (lax) mode converts on the way in: `0` and `"yes"` become booleans, `"5"`, `5.0` and `true`
integers, a number a date or a moment (a Unix timestamp). The OpenAPI schema says `boolean`, `integer`,
`number` and `string` (`date`, `date-time`), and a client that sends another type has made a mistake that the
API refuses with 422 naming the field (`bool_type`, `int_type`, `float_type`, `date_type`, `datetime_type`),
rather than reading its request differently than the schema does. Text and real values still validate as before
(a date or a moment given as an ISO 8601 string or as a Python value; an integer where a number is asked), so
stored events and Temporal payloads, which hold JSON types, read back unchanged.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator, Strict
from pydantic_core import PydanticCustomError

Boolean = Annotated[bool, Strict()]
Integer = Annotated[int, Strict()]
#: An integer is a number too (JSON Schema's `number`); a boolean or a string is not.
Number = Annotated[float, Strict()]


def _not_a_number(kind: str, what: str) -> BeforeValidator:
    def check(value: Any) -> Any:
        if isinstance(value, int | float):  # bool is an int
            raise PydanticCustomError(f"{kind}_type", f"Input should be {what} written as an ISO 8601 string")
        return value
    return BeforeValidator(check)


Date = Annotated[date, _not_a_number("date", "a valid date")]
Moment = Annotated[AwareDatetime, _not_a_number("datetime", "a valid datetime with its offset")]
Datetime = Annotated[datetime, _not_a_number("datetime", "a valid datetime")]
