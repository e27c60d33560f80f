"""The admin console at ``/admin/``: server-rendered pages over the admin use cases."""

from .pages import admin_routes
from .session import CONSOLE_PATH

__all__ = ["CONSOLE_PATH", "admin_routes"]
