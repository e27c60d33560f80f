"""The HTTP and WebSocket driving adapter over Starlette."""
