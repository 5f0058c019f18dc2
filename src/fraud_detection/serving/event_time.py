"""Times a client sends (a transaction's `event_time`, a label's `observed_at`): ISO 8601 text,
kept as the naive UTC the log stores; anything else is a 400 naming the field."""

from datetime import UTC, datetime
from typing import Any

from ..errors import InvalidInput


def parse_time(value: Any, field: str, path: str | None = None) -> datetime:
    """`value` (ISO 8601, `2026-03-01T09:30:00Z`; no zone means UTC) as naive UTC;
    InvalidInput naming `field` (at `path` in the body, when given) otherwise."""
    wrong = InvalidInput(
        f"field {path or field}: must be an ISO 8601 time such as 2026-03-01T09:30:00Z "
        f"(got {value!r})",
        field=field,
    )
    if not isinstance(value, str):
        raise wrong
    try:
        # RFC 3339 allows a lowercase t and z; Python's parser takes only the capitals.
        at = datetime.fromisoformat(value.upper())
        return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo is not None else at
    except (ValueError, OverflowError) as exc:  # Overflow: before year 1 or after 9999 in UTC
        raise wrong from exc


def optional_time(document: Any, field: str, prefix: str = "") -> datetime | None:
    """`document[field]` parsed when present and not null, else None; `prefix` says where the
    document is in the body (`instances[3].`)."""
    if not isinstance(document, dict) or document.get(field) is None:
        return None
    return parse_time(document[field], field, prefix + field)
