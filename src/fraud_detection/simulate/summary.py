"""What a replay did, counted as it goes."""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Summary:
    """What a replay did; `ok` when every transaction was scored and every label stored."""

    transactions: int
    labels_planned: int
    synthetic: bool = False
    sent: int = 0
    scored: int = 0
    failed: int = 0
    flagged: int = 0
    frauds: int = 0
    labels_queued: int = 0
    labels_sent: int = 0
    labels_failed: int = 0
    labels_unsent: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    last_error: str | None = None
    replay_seconds: float = 0.0
    elapsed_seconds: float = 0.0
    interrupted: bool = False
    stopped: str | None = None
    issuer: dict[str, int] | None = None
    """What the simulated issuer learnt (reviews, chargebacks...), with --labels issuer."""

    @property
    def rate(self) -> float:
        """Transactions sent per second so far (the wait for the last labels excluded)."""
        return self.sent / self.replay_seconds if self.replay_seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        """Every transaction scored and every chosen label stored."""
        return (
            self.failed == 0
            and self.labels_failed == 0
            and self.labels_unsent == 0
            and self.sent == self.transactions
            and not self.interrupted
            and self.stopped is None
        )

    def as_dict(self) -> dict[str, Any]:
        """The summary as plain JSON-ready values."""
        return {
            "transactions": self.transactions,
            "sent": self.sent,
            "scored": self.scored,
            "failed": self.failed,
            "flagged": self.flagged,
            "frauds": self.frauds,
            "labels_planned": self.labels_planned,
            "labels_queued": self.labels_queued,
            "labels_sent": self.labels_sent,
            "labels_failed": self.labels_failed,
            "labels_unsent": self.labels_unsent,
            "errors": dict(self.errors),
            "last_error": self.last_error,
            "rate": round(self.rate, 3),
            "replay_seconds": round(self.replay_seconds, 3),
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "interrupted": self.interrupted,
            "stopped": self.stopped,
            "synthetic": self.synthetic,
            "issuer": self.issuer,
            "ok": self.ok,
        }
