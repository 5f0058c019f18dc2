"""schemathesis hooks (loaded through SCHEMATHESIS_HOOKS) for the contract run in test_contract.py.

JSON Schema cannot say that a V2 tensor's `data` holds exactly N x 30 values for `shape`
[N, 30], nor that every row's Amount (its 30th value) is >= 0, nor that a list of
`parameters.event_time` holds one time per row; the document says so in words. This hook
makes the positive V2 bodies schemathesis generates obey those rules, so that "a valid request
is accepted" is checked on bodies that are valid. Negative ones are untouched.
"""

from typing import Any

import schemathesis

from fraud_detection.schema import N_FEATURES

POSITIVE = schemathesis.GenerationMode.POSITIVE


def _rows(data: list[Any]) -> list[list[Any]]:
    if data and isinstance(data[0], list):
        return data
    count = len(data) // N_FEATURES
    return [data[i * N_FEATURES : (i + 1) * N_FEATURES] for i in range(count)]


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    positive = case.meta is not None and case.meta.generation.mode == POSITIVE
    if not (positive and case.operation.path.endswith("/infer") and isinstance(case.body, dict)):
        return case
    tensor = case.body["inputs"][0]
    nested = bool(tensor["data"]) and isinstance(tensor["data"][0], list)
    rows = [[*row[:-1], abs(row[-1])] for row in _rows(tensor["data"])]
    tensor["data"] = rows if nested else [value for row in rows for value in row]
    tensor["shape"] = [len(rows), tensor["shape"][1]]
    parameters = case.body.get("parameters")
    times = parameters.get("event_time") if isinstance(parameters, dict) else None
    if isinstance(times, list):
        generated = times or ["2026-03-01T00:00:00Z"]
        parameters["event_time"] = [generated[i % len(generated)] for i in range(len(rows))]
    return case
