"""Medians, the performance targets as ratios of one run, the table, and the JSON file."""

from __future__ import annotations

import json
import math
import os
import statistics
from pathlib import Path
from typing import Any

LABELS = {
    "raw": "raw ASGI callable on pingpong's server (granian), no limiter",
    "raw-rsgi": "raw RSGI callable on pingpong's server (granian), no limiter",
    "raw-uvicorn": "raw ASGI callable on uvicorn (uvloop, httptools), no limiter",
    "starlette": "Starlette, no limiter",
    "fastapi": "FastAPI, no limiter",
}
FAMILY_LABELS = {
    "pingpong": "pingpong",
    "slowapi": "FastAPI + slowapi",
    "flask-limiter": "Flask + Flask-Limiter (gunicorn sync)",
}


FAR = "pingpong-redisfar-admitted"
LABELS[FAR] = "pingpong, redis:// 1 ms away each way (fault proxy), admitted"


def label(name: str) -> str:
    if name in LABELS:
        return LABELS[name]
    family, storage, mode = name.rsplit("-", 2)
    return f"{FAMILY_LABELS.get(family, family)}, {storage}://, {mode}"


def summarize_config(entry: dict[str, Any]) -> dict[str, Any]:
    """Medians over the runs; Redis commands per request (per 429 when rejected)."""
    runs = entry["runs"]
    rps = [r["rps"] for r in runs]
    summary: dict[str, Any] = {
        "rps": statistics.median(rps),
        "rps_min": min(rps),
        "rps_max": max(rps),
        "p50_ms": statistics.median(r["p50_ms"] for r in runs),
        "p99_ms": statistics.median(r["p99_ms"] for r in runs),
        "share_429": sum(r["non2xx"] for r in runs) / max(sum(r["requests"] for r in runs), 1),
        "errors": sum(r["errors"] for r in runs),
    }
    if runs and "redis_calls" in runs[0]:
        calls = sum(r["redis_calls"] for r in runs)
        requests = sum(r["requests"] + r["warmup_requests"] for r in runs)
        rejected = sum(r["non2xx"] + r["warmup_non2xx"] for r in runs)
        summary["redis_calls_per_request"] = calls / max(requests, 1)
        summary["redis_calls_per_429"] = calls / rejected if rejected else None
        evalsha = sum(r["redis_commands"].get("evalsha", 0) for r in runs)
        summary["decisions_per_evalsha"] = (requests - rejected) / evalsha if evalsha else None
    paced, paced_raw = entry.get("paced", []), entry.get("paced_raw", [])
    if paced:
        summary["paced_target_rps"] = statistics.median(r["target_rps"] for r in paced)
        summary["paced_rps"] = statistics.median(r["rps"] for r in paced)
        summary["paced_p50_ms"] = statistics.median(r["p50_ms"] for r in paced)
        summary["paced_p99_ms"] = statistics.median(r["p99_ms"] for r in paced)
    if paced_raw:
        summary["paced_raw_p99_ms"] = statistics.median(r["p99_ms"] for r in paced_raw)
        summary["added_p99_ms"] = statistics.median(
            a["p99_ms"] - b["p99_ms"] for a, b in zip(paced, paced_raw, strict=True)
        )
    return summary


# Targets 1-3: (id, numerator, denominator, at least); "raw" is the bare ASGI
# callable on the same server.
RATIO_TARGETS = (
    ("1", "pingpong-memory-admitted", "raw", 0.9),
    ("1b", "pingpong-memory-rejected", "raw", 0.9),
    ("2a", "pingpong-redis-admitted", "raw", 0.6),
    ("2b", "pingpong-redis-admitted", "slowapi-redis-admitted", 5.0),
    ("2c", "pingpong-redis-rejected", "raw", 0.9),
    ("3a", "pingpong-memory-rejected", "pingpong-memory-admitted", 1.0),
    ("3b", "pingpong-redis-rejected", "pingpong-redis-admitted", 1.0),
)
P99_TARGETS = (
    "pingpong-memory-admitted",
    "pingpong-redis-admitted",
    "pingpong-memory-rejected",
    "pingpong-redis-rejected",
)


def _target(
    tid: str, what: str, value: float | None, op: str, goal: float, unit: str = "x"
) -> dict[str, Any]:
    """One target, with an honest "met" or "missed by" statement."""
    target = f"{op} {goal:g}{unit}"
    if value is None or math.isnan(value):
        statement = "not measured in this run"
        return {"id": tid, "what": what, "value": None, "target": target, "met": None,
                "statement": statement}  # fmt: skip
    met = value >= goal if op == ">=" else value <= goal
    gap = abs(value - goal)
    rel = f" ({gap / goal:.0%})" if goal else ""
    shown = f"{value:.3g}{unit} vs {target}"
    statement = f"met ({shown})" if met else f"missed by {gap:.3g}{unit}{rel} ({shown})"
    return {"id": tid, "what": what, "value": value, "target": target, "met": met,
            "statement": statement}  # fmt: skip


def ratio_target(
    data: dict[str, Any], tid: str, top: str, bottom: str, goal: float
) -> dict[str, Any]:
    """A throughput ratio of medians, with the ratio of each round beside it
    (the rounds ran minutes apart on a shared machine)."""
    summary = data["summary"]
    what = f"{top} / {bottom} req/s"
    if top not in summary or bottom not in summary:
        return _target(tid, what, None, ">=", goal)
    found = _target(tid, what, summary[top]["rps"] / summary[bottom]["rps"], ">=", goal)
    rounds = zip(data["runs"][top]["runs"], data["runs"][bottom]["runs"], strict=False)
    found["rounds"] = [round(a["rps"] / b["rps"], 3) for a, b in rounds]
    found["statement"] += "; per round " + ", ".join(f"{r:.2f}" for r in found["rounds"])
    return found


def targets(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The performance targets, each computed from this one run: throughput
    against the bare callable on the same server and slowapi, rejections no slower than admissions,
    Redis commands per 429, nothing admitted beyond the GCRA bound across
    replicas, memory per key and idle keys reclaimed, and the p99 added at 50 %
    load."""
    summary = data["summary"]
    found = [ratio_target(data, *spec) for spec in RATIO_TARGETS]
    per_429 = (summary.get("pingpong-redis-rejected") or {}).get("redis_calls_per_429")
    what = "Redis commands per rejected request, pingpong (INFO commandstats)"
    found.append(_target("4", what, per_429, "<=", 0.05, ""))
    accuracy = (data.get("accuracy") or {}).get("pingpong")
    excess = float(accuracy["excess_over_gcra_bound"]) if accuracy else None
    what = "admitted beyond the GCRA guarantee, 3 replicas on one Redis"
    found.append(_target("5", what, excess, "<=", 0, " requests"))
    memory = data.get("memory") or {}
    per_key = memory.get("bytes_per_key")
    found.append(_target("6a", "memory:// RSS per key", per_key, "<=", 200, " B"))
    found.append(_keys_target(memory, data.get("redis_keys") or {}))
    for name in P99_TARGETS:
        added = (summary.get(name) or {}).get("added_p99_ms")
        what = f"p99 added over raw at 50 % load: {name}"
        found.append(_target("7", what, added, "<=", 0.5, " ms"))
    return found


def _keys_target(memory: dict[str, Any], keys: dict[str, Any]) -> dict[str, Any]:
    reclaimed = memory.get("idle_reclaimed")
    met = bool(reclaimed and keys.get("all_strings") and keys.get("all_have_ttl"))
    statement = (
        f"idle keys reclaimed: {'yes' if reclaimed else 'NO'}; Redis keys {keys.get('types')}, "
        f"all with a TTL: {'yes' if keys.get('all_have_ttl') else 'NO'}, "
        f"MEMORY USAGE {keys.get('memory_usage_bytes_avg')} B"
    )
    return {
        "id": "6b",
        "what": "idle memory:// keys reclaimed; each Redis key one string with a TTL",
        "value": met if memory and keys else None,
        "target": "yes",
        "met": met if memory and keys else None,
        "statement": statement,
    }


def _num(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float) and abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def table(data: dict[str, Any]) -> str:
    """The one table: medians per configuration, then targets, accuracy, memory."""
    lines = [
        "| configuration | req/s | p50 ms | p99 ms | 429 share | Redis cmds per req (per 429)"
        " | p99 ms at 50% (req/s) | raw p99 ms at that rate |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in data["summary"].items():
        cmds = s.get("redis_calls_per_429") if name.endswith("rejected") else None
        cmds = cmds if cmds is not None else s.get("redis_calls_per_request")
        paced = (
            f"{_num(s.get('paced_p99_ms'))} ({_num(s.get('paced_rps'))})"
            if "paced_rps" in s
            else "-"
        )
        lines.append(
            f"| {label(name)} | {_num(s['rps'])} | {_num(s['p50_ms'])} | {_num(s['p99_ms'])} "
            f"| {s['share_429']:.0%} | {_num(cmds, 3)} | {paced} "
            f"| {_num(s.get('paced_raw_p99_ms'))} |"
        )
    per_429 = {
        family: (data["summary"].get(f"{family}-redis-rejected") or {}).get("redis_calls_per_429")
        for family in FAMILY_LABELS
    }
    lines += [
        "",
        "Redis commands per rejected request (INFO commandstats, every command counted, "
        "those run inside Lua scripts too, over warmup + run, divided by the 429s): "
        + ", ".join(f"{FAMILY_LABELS[f]} {_num(v, 4)}" for f, v in per_429.items()),
    ]
    far = data["summary"].get(FAR)
    if far:
        near = data["summary"].get("pingpong-redis-admitted") or {}
        lines += [
            "",
            f"Redis 1 ms away each way (the toolkit's fault proxy): {_num(far['rps'])} req/s, "
            f"p99 {_num(far['p99_ms'])} ms, {_num(far.get('decisions_per_evalsha'), 1)} "
            f"decisions per EVALSHA (on loopback: {_num(near.get('decisions_per_evalsha'), 1)}).",
        ]
    lines += ["", "| target | measured |", "|---|---|"]
    for t in data["targets"]:
        lines.append(f"| {t['id']}. {t['what']} | {t['statement']} |")
    if data.get("accuracy"):
        lines += [
            "",
            "| accuracy (3 replicas, one Redis, 64 connections) | limit | seconds | admitted "
            "| GCRA bound B+floor(L/T) | own guarantee | 429 | other |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for a in data["accuracy"].values():
            lines.append(
                f"| {FAMILY_LABELS[a['family']]} | {a['limit']} | {a['seconds']:.2f} "
                f"| {a['admitted']} | {a['gcra_bound']} | {a['own_guarantee_bound']} "
                f"| {a['rejected']} | {a['other']} |"
            )
    memory = data.get("memory")
    if memory:
        lines += [
            "",
            f"memory://: {memory['keys']:,} keys (memory_max_keys {memory['memory_max_keys']:,}), "
            f"{memory['bytes_per_key']} B/key of RSS, {memory['fill_decision_us']} us per "
            f"new-key decision; after they all went idle, {memory['refilled_new_keys']:,} new "
            f"keys ({memory['refill_decision_us']} us each) let {memory['idle_keys_reclaimed']:,} "
            f"idle ones go (table at most {memory['table_size_max_during_refill']:,} keys, "
            f"RSS +{memory['rss_growth_on_refill_bytes']:,} B).",
        ]
    keys = data.get("redis_keys")
    if keys:
        lines.append(
            f"Redis: {keys['keys']:,} keys for {keys['requests']:,} distinct clients, types "
            f"{keys['types']}, all with a TTL: {keys['all_have_ttl']}, MEMORY USAGE "
            f"{keys['memory_usage_bytes_avg']} B/key, used_memory "
            f"+{keys['used_memory_per_key_bytes']} B/key (e.g. {keys['example_key']})."
        )
    return "\n".join(lines)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)
