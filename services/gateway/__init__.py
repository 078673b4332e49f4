"""The gateway: the app-facing HTTP API that accepts plan requests and serves their status and plans.

Build it with ``services.gateway.app.create_app``; run it with ``python -m services.gateway``.
"""
