"""The HTTP service: ``create_app(index_dir, reader=...)`` and the limits it enforces.

Run it with ``odqa serve INDEX_DIR``; see the README's Service section for the endpoints.
"""

from odqa.server.app import create_app
from odqa.server.limits import Limits

__all__ = ["Limits", "create_app"]
