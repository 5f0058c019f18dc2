"""The WSGI entry point: `gunicorn -c gunicorn.conf.py app:app`, configured by environment."""

from fraud_detection.serving.wsgi import app

__all__ = ["app"]
