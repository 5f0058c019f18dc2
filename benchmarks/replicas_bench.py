"""Three replicas behind nginx through a promotion and a rollback: the figures of
tests/test_replicas.py (requests, failures, log rows, convergence per replica, Prometheus's
summed rate against the rate sent), written to benchmarks/RESULTS.md.
Usage: python benchmarks/replicas_bench.py   (needs nginx, prometheus and PostgreSQL binaries)
"""

from results import figures_of_test, write_section


def measure() -> dict[str, object]:
    """Run test_replicas.py once; the figures it leaves behind."""
    return figures_of_test("tests/test_replicas.py", "FRAUD_REPLICA_FIGURES")


def table(figures: dict[str, object]) -> str:
    seconds = lambda values: ", ".join(f"{v:.1f} s" for v in values)  # noqa: E731
    rows = [
        ("replicas (1 gunicorn worker each)", figures["replicas"]),
        ("requests sent through nginx", figures["requests"]),
        ("failed requests", figures["failures"]),
        ("prediction-log rows in PostgreSQL", figures["log_rows"]),
        ("promotion: replica serves v2 after", seconds(figures["promotion_s"])),
        ("rollback: replica serves v1 after", seconds(figures["rollback_s"])),
        ("bound (reload interval + 5 s)", f"{figures['reload_interval_s'] + 5:.1f} s"),
        ("rate sent by the clients", f"{figures['sent_rate']:.1f} requests/s"),
        ("sum of rate() over 3 instances", f"{figures['prometheus_rate']:.1f} requests/s"),
    ]
    return "| figure | value |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in rows)


def main() -> None:
    figures = measure()
    body = (
        "Three `fraud serve` replicas (own processes, caches, metrics folders; reload every "
        f"{figures['reload_interval_s']} s) share a moto S3 store and one PostgreSQL log behind "
        "the shipped nginx config; four clients, each pausing 0.05 s between "
        "requests, send through nginx while `fraud models promote 2` and then "
        "`fraud models rollback` run. Convergence is polled on each replica's `/models` "
        "every 0.1 s.\n\n" + table(figures)
    )
    print(body)
    write_section("Many replicas", "python benchmarks/replicas_bench.py", body)


if __name__ == "__main__":
    main()
