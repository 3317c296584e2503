"""The WSGI entry point: `gunicorn wsgi:app`."""

from terminus_hub import create_app

app = create_app()
