"""The WSGI entry point: `gunicorn wsgi:app`."""

import sys

from terminus_hub import create_app
from terminus_hub.settings import SettingsError

try:
    app = create_app()
except SettingsError as exc:
    # One line saying which setting is missing, instead of a traceback (gunicorn stops).
    sys.exit(f"Error: {exc.format_message()}")
