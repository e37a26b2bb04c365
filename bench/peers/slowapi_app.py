"""FastAPI + slowapi, the usual setup from slowapi's README: a per-address limit
on /ping, storage from BENCH_STORAGE (memory:// or redis://)."""

import os

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from slowapi import Limiter, _rate_limit_exceeded_handler
from slowapi.errors import RateLimitExceeded
from slowapi.util import get_remote_address

LIMIT = os.environ["BENCH_LIMIT"]
limiter = Limiter(key_func=get_remote_address, storage_uri=os.environ["BENCH_STORAGE"])
app = FastAPI()
app.state.limiter = limiter
app.add_exception_handler(RateLimitExceeded, _rate_limit_exceeded_handler)


@app.get("/ping", response_class=PlainTextResponse)
@limiter.limit(LIMIT)
async def ping(request: Request) -> str:
    return "pong"


@app.get("/healthz", response_class=PlainTextResponse)
async def healthz() -> str:
    return "ok"
