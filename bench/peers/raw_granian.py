"""The raw callables on pingpong's own server (granian, embedded, same settings),
so that the ratio measures the limiter, not the server: ``asgi`` is the
reference (``raw_asgi.py``), ``rsgi`` the ceiling (``raw_rsgi.py``).

Usage: python -m raw_granian PORT asgi|rsgi   (from bench/peers, with the repo's venv)
"""

from __future__ import annotations

import sys

import raw_asgi
import raw_rsgi
import uvloop
from granian.constants import Interfaces

from pingpong.server.granian_server import Granian, bind

APPS = {"asgi": (raw_asgi.app, Interfaces.ASGI), "rsgi": (raw_rsgi.app, Interfaces.RSGI)}

if __name__ == "__main__":
    app, interface = APPS[sys.argv[2]]
    sock = bind("127.0.0.1", int(sys.argv[1]))
    uvloop.run(Granian(app, sock, interface).serve())
