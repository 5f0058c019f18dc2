"""The WSGI application object gunicorn imports; built from the environment."""

from . import create_app

app = create_app()
