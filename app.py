"""The WSGI entry point: `gunicorn -c gunicorn.conf.py app:app`, configured by environment."""

from fraud_detection.serving import create_app

app = create_app()
