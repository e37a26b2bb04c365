"""The reference: the raw ASGI callable on pingpong's own server (granian,
embedded, same settings), so that the ratio measures the limiter, not the server.

Usage: python -m raw_granian PORT   (from bench/peers, with the repo's venv)
"""

from __future__ import annotations

import sys

import uvloop
from granian.constants import Interfaces
from raw_asgi import app

from pingpong.config import Settings
from pingpong.server import Granian, bind

if __name__ == "__main__":
    sock = bind(Settings(host="127.0.0.1", port=int(sys.argv[1])))
    uvloop.run(Granian(app, sock, Interfaces.ASGI).serve())
