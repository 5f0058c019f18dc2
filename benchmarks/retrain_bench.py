"""Retraining on the real dataset: train a champion, then retrain twice with nothing new.

The second and third runs see the same data: neither may promote a model that is not better.
Usage: python benchmarks/retrain_bench.py [--data PATH]
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from results import write_section
from train_bench import DEFAULT_DATA, run_fraud_train


def fraud(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "fraud_detection", *args], check=True, capture_output=True, text=True
    )
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        run_fraud_train(args.data, store)
        reports = []
        for run in (1, 2):
            report = Path(tmp) / f"report{run}.md"
            fraud(
                "retrain", "--data", str(args.data), "--store", str(store), "--report", str(report)
            )
            # The plot lives in the store beside the report, not in RESULTS.md.
            reports.append(report.read_text().replace("![PR curves](retrain_pr_curves.png)", ""))
        listing = fraud("models", "list", "--store", str(store))
    body = "\n".join(
        [
            "`fraud train` makes the champion (fitted on the first 64% by time); each "
            "`fraud retrain` "
            "fits a challenger on all but the most recent 10% and scores both models there.",
            "",
            *(f"### Retrain run {i}\n\n{r.split(chr(10), 2)[2]}" for i, r in enumerate(reports, 1)),
            "Store afterwards:",
            "",
            "```",
            listing.rstrip(),
            "```",
        ]
    )
    write_section("Retraining on the real dataset", "python benchmarks/retrain_bench.py", body)
    print(body)


if __name__ == "__main__":
    main()
