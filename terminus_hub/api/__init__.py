"""The REST API under /api/v1: JSON in and out, bearer keys or a browser session."""

from terminus_hub.api import account  # noqa: F401  (registers its routes on bp)
from terminus_hub.api import api_keys  # noqa: F401  (registers its routes on bp)
from terminus_hub.api import members  # noqa: F401  (registers its routes on bp)
from terminus_hub.api import openapi  # noqa: F401  (registers its routes on bp)
from terminus_hub.api import records  # noqa: F401  (registers its routes on bp)
from terminus_hub.api import workspaces  # noqa: F401  (registers its routes on bp)
from terminus_hub.api.blueprint import bp

__all__ = ["bp"]
