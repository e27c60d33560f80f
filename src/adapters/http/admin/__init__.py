"""The admin console at ``/admin/``: server-rendered pages over the admin use cases."""

from .pages import admin_routes

__all__ = ["admin_routes"]
