"""FastAPI, no limiter."""

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

app = FastAPI()


@app.get("/ping", response_class=PlainTextResponse)
async def ping() -> str:
    return "pong"


@app.get("/healthz", response_class=PlainTextResponse)
async def healthz() -> str:
    return "ok"
