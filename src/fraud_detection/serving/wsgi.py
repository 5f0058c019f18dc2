"""The WSGI application object gunicorn imports, built from the environment."""

import atexit
import logging

from ..config import get_settings
from . import close_app, create_app

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
app = create_app(get_settings())
atexit.register(close_app, app)
