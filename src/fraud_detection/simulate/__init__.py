"""`fraud simulate`: replay the new data through a running service as live traffic, then label it.

`traffic` shapes what is sent (the new rows, an even spread over the period, drift shifts, the
pace); `replay` sends it: one loop that posts transactions at that pace, retries, and sends
each scored transaction's label once it is due (`labels`; or as a card issuer learns them,
`issuer`), talking to the service through `service` and counting what happened in a `Summary`.
"""

from .issuer import IssuedLabel, IssuerLabels, IssuerOptions
from .labels import LabelQueue, PendingLabel, choose_labelled
from .replay import ISSUER_SPEED, Replay, ReplayOptions, replay, run_id
from .service import wait_until_ready
from .summary import Summary
from .traffic import (
    HISTORY_FRACTION,
    Shift,
    ShiftError,
    SimClock,
    apply_shifts,
    due_time,
    elapsed,
    event_times,
    new_data,
    parse_shift,
    spread_rows,
)

__all__ = [
    "HISTORY_FRACTION",
    "ISSUER_SPEED",
    "IssuedLabel",
    "IssuerLabels",
    "IssuerOptions",
    "LabelQueue",
    "PendingLabel",
    "Replay",
    "ReplayOptions",
    "Shift",
    "ShiftError",
    "SimClock",
    "Summary",
    "apply_shifts",
    "choose_labelled",
    "due_time",
    "elapsed",
    "event_times",
    "new_data",
    "parse_shift",
    "replay",
    "run_id",
    "spread_rows",
    "wait_until_ready",
]
