"""Flask + Flask-Limiter (served by gunicorn sync): a per-address limit on /ping,
storage from BENCH_STORAGE (memory:// or redis://)."""

import os

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

app = Flask(__name__)
limiter = Limiter(get_remote_address, app=app, storage_uri=os.environ["BENCH_STORAGE"])
TEXT = {"Content-Type": "text/plain; charset=utf-8"}


@app.get("/ping")
@limiter.limit(os.environ["BENCH_LIMIT"])
def ping() -> tuple[str, int, dict[str, str]]:
    return "pong", 200, TEXT


@app.get("/healthz")
def healthz() -> tuple[str, int, dict[str, str]]:
    return "ok", 200, TEXT
