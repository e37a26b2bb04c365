"""Serving apart from supervising, as uvicorn splits them.

- ``run``: ``serve()``, what ``pingpong serve`` calls: binds, then runs one
  worker in this process or supervises N of them.
- ``granian_server``: granian embedded on a socket bound here.
- ``worker``: one worker's life: its event loop, signals, drain, config watch.
- ``supervisor``: prefork workers and the policy that restarts them.
- ``metrics_listener``: /metrics on its own port.
- ``signals``: the signals a starting process holds until it can handle them.

This package's ``__init__`` imports nothing, so that the CLI can hold the
signals before it pays for the imports (most of the start-up time).
"""
