"""Serving: the HTTP ``gateway`` (faust-streaming, a process of its own) and the Redis
``online_store`` the flow writes and the gateway reads."""
