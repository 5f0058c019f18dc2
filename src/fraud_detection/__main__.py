"""`python -m fraud_detection` runs the `fraud` command."""

from .cli import main

main()
