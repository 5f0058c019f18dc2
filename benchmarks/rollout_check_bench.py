"""How often the rollout's flag-rate check aborts a canary that is as good as the champion
(false aborts), and how often it catches one that flags 3x or 10x as much, by simulation of
the step's counts through `rollout.check_flag_ratio` itself. A step is judged again at every
`fraud rollout step` while it holds, so the repeated looks are simulated too.
Usage: python benchmarks/rollout_check_bench.py
"""

import numpy as np

from fraud_detection.rollout import LEVEL, Limits, Variant, check_flag_ratio
from results import write_section

FLAG_RATE = 0.0025  # the champion's share of rows flagged (the real data's is about 0.2%)
SHARE = 0.05  # the first step
TRIALS = 500
LOOKS = 10  # judgements of one step as its rows grow to the row count given


def aborted(rows: int, factor: float, looks: int, rng: np.random.Generator) -> bool:
    """One simulated step: does any of `looks` judgements, at rows/looks, 2 rows/looks, ...
    canary rows, find a breach?"""
    limits = Limits()
    champion_rows = round(rows * (1 - SHARE) / SHARE)
    canary_flags = rng.binomial(1, min(FLAG_RATE * factor, 1.0), rows)
    champion_flags = rng.binomial(1, FLAG_RATE, champion_rows)
    for look in range(1, looks + 1):
        n, m = rows * look // looks, champion_rows * look // looks
        canary = Variant(rows=n, flagged=int(canary_flags[:n].sum()))
        champion = Variant(rows=m, flagged=int(champion_flags[:m].sum()))
        if check_flag_ratio(canary, champion, limits).status == "breach":
            return True
    return False


def rates() -> list[tuple[int, int, float, float]]:
    """(canary rows, looks, factor, share of trials aborted)."""
    rng = np.random.default_rng(0)
    found = []
    for rows in (300, 1000):
        for looks in (1, LOOKS):
            for factor in (1.0, 3.0, 10.0):
                hits = sum(aborted(rows, factor, looks, rng) for _ in range(TRIALS))
                found.append((rows, looks, factor, hits / TRIALS))
    return found


def main() -> None:
    lines = [
        "| canary rows at the step's end | looks | canary flags x champion | aborted |",
        "|---:|---:|---:|---:|",
    ]
    for rows, looks, factor, share in rates():
        lines.append(f"| {rows:,} | {looks} | {factor:g}x | {share:.1%} |")
    body = (
        f"The champion flags {FLAG_RATE:.2%} of rows; the canary takes {SHARE:.0%} and flags "
        f"1x (as good: every abort is false), 3x or 10x that rate. {TRIALS} simulated steps per "
        f"row, each judged once at its end or {LOOKS} times as its rows grow; the check is the "
        f"shipped one ({LEVEL:.0%} interval of the ratio, limit {Limits().max_flag_ratio:g}).\n\n"
        + "\n".join(lines)
    )
    print(body)
    write_section(
        "Safe rollout: the flag-rate check", "python benchmarks/rollout_check_bench.py", body
    )


if __name__ == "__main__":
    main()
