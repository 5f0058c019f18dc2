"""Safe rollout through three replicas: how much traffic a bad version saw before its rollout
was aborted, after how many rows, and how fast every replica was back on the champion. The
figures of tests/test_rollout_replicas.py, written to benchmarks/RESULTS.md.
Usage: python benchmarks/rollout_bench.py   (needs nginx, prometheus and PostgreSQL binaries)
"""

from results import figures_of_test, write_section


def measure() -> dict[str, object]:
    """Run test_rollout_replicas.py once; the figures it leaves behind."""
    return figures_of_test("tests/test_rollout_replicas.py", "FRAUD_ROLLOUT_FIGURES")


def table(figures: dict[str, object]) -> str:
    seconds = lambda values: ", ".join(f"{v:.1f} s" for v in values)  # noqa: E731
    rows_until = int(figures["rows_until_abort"])  # type: ignore[call-overload]
    canary = int(figures["bad_canary_rows"])  # type: ignore[call-overload]
    rows = [
        ("good version: shares passed", ", ".join(f"{s:.0%}" for s in figures["good_steps"])),  # type: ignore[attr-defined]
        ("bad version: rows through the service from start to abort", f"{rows_until:,}"),
        ("of which the canary judged at the abort", f"{figures['bad_judged_canary_rows']:,}"),
        ("bad version: rows it answered in all (incl. the reload lag)", f"{canary:,}"),
        ("its share of the rows until the abort", f"{canary / max(rows_until, 1):.1%}"),
        ("seconds from start to the aborting step", f"{figures['seconds_until_abort']:.1f} s"),
        ("why", str(figures["bad_reason"])),
        (
            "replicas without the canary, after its alias was removed",
            seconds(figures["replicas_back_s"]),  # type: ignore[arg-type]
        ),
        ("bound (reload interval + 2 s)", f"{figures['reload_interval_s'] + 2:.1f} s"),  # type: ignore[operator]
        ("canary rows logged after that bound", figures["late_canary_rows"]),
        ("server errors (all replicas)", figures["server_errors"]),
        ("log rows / rows answered", f"{figures['log_rows']:,} / {figures['answered']:,}"),
    ]
    return "| figure | value |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in rows)


def main() -> None:
    figures = measure()
    body = (
        "Three `fraud serve` replicas (1 worker each, reload every "
        f"{figures['reload_interval_s']} s) share a moto S3 store and one PostgreSQL log "
        "behind the shipped nginx, scraped by Prometheus; `fraud simulate --synthetic` sends "
        "up to 300 transactions/s in requests of 10. `fraud rollout step --prometheus` runs "
        "every 1-2 s instead of hourly, with `--min-rows 300`. First a version retrained on the "
        "same data goes through 5% -> 25% -> 50% (`--min-duration 5s`) and becomes champion; "
        "then a copy of it whose threshold flags ten times as many rows starts at 5% "
        "(`--min-duration 1h`, so only a breach ends its step).\n\n" + table(figures)
    )
    print(body)
    write_section("Safe rollout", "python benchmarks/rollout_bench.py", body)


if __name__ == "__main__":
    main()
