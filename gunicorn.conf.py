"""gunicorn settings for `gunicorn -c gunicorn.conf.py app:app`: the same as `fraud serve`."""

from fraud_detection.gunicorn_conf import *  # noqa: F403
