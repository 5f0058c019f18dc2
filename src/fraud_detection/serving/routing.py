"""Which model scores which transaction: champion, an A/B challenger share, or shadow scoring.

With a `challenger` alias served, FRAUD_CHALLENGER_TRAFFIC sends that share of transactions
to it, sticky by a stable hash of the transaction id (the same transaction always meets the
same model, in every worker); FRAUD_SHADOW=1 scores every transaction with both and answers
with the champion's decision. Without a challenger, everything goes to the champion.
"""

import zlib
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .model import LoadedModel
from .scoring import Scored, score


@dataclass(frozen=True)
class Part:
    """Rows of a request one model scored (their positions, features and ids);
    `answered` is False for shadow scores."""

    scored: Scored
    rows: NDArray[np.intp]
    x: NDArray[np.float32]
    ids: list[str]
    answered: bool = True


def bucket(transaction_id: str) -> float:
    """A stable position in [0, 1) for a transaction id (Python's hash() differs per process)."""
    return zlib.crc32(transaction_id.encode()) / 2**32


def route(
    x: NDArray[np.float32],
    ids: list[str],
    champion: LoadedModel,
    challenger: LoadedModel | None,
    *,
    challenger_traffic: float,
    shadow: bool,
) -> list[Part]:
    """Score each row with the model its variant assigns; every row is answered exactly once."""
    every = np.arange(len(x))
    if challenger is None or challenger.version == champion.version:
        return [Part(score(champion, x), every, x, ids)]
    if shadow:
        return [
            Part(score(champion, x), every, x, ids),
            Part(score(challenger, x, "shadow"), every, x, ids, answered=False),
        ]
    to_challenger = np.array([bucket(tid) < challenger_traffic for tid in ids], dtype=bool)
    parts = []
    for model, variant, mask in (
        (champion, "champion", ~to_challenger),
        (challenger, "challenger", to_challenger),
    ):
        if mask.any():
            rows = every[mask]
            part_ids = [ids[row] for row in rows.tolist()]
            parts.append(Part(score(model, x[mask], variant), rows, x[mask], part_ids))
    return parts
