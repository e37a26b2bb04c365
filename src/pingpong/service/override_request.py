"""An override's fields, defined once: the admin API validates its bodies with
``OverrideRequest``, its OpenAPI schemas are generated from these models, the
control plane takes the request whole, and ``pingpong admin override`` names
its options after the same fields.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from pingpong.config import RateField
from pingpong.core.overrides import MAX_EXPIRES_IN, MAX_REASON
from pingpong.core.rates import MAX_COUNT

RateText = Annotated[
    RateField,
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "examples": ["1000/minute"]}),
    Field(description="N/second|minute|hour|day or N/<seconds>s, e.g. 1000/minute"),
]
Burst = Annotated[
    int | None, Field(ge=1, le=MAX_COUNT, description="the quota at once (default: the rate's N)")
]


def _printable(text: str) -> str:
    """No control, format or separator characters but the space: a reason is
    printed on operators' terminals and in logs (no escape sequence, no
    bidirectional override, no line break)."""
    if not text.isprintable():
        raise ValueError("use printable characters only (no control characters or line breaks)")
    return text


Reason = Annotated[
    str,
    AfterValidator(_printable),
    Field(max_length=MAX_REASON, description="why, for the audit (printable characters)"),
]


class OverrideRequest(BaseModel):
    """The body of ``PUT /admin/v1/overrides/{policy}/{key}``."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"rate": "1000/minute", "burst": 100, "expires_in": 86400, "reason": "ticket 4711"}
            ]
        },
    )
    rate: RateText
    burst: Burst = None
    expires_in: int = Field(ge=1, le=MAX_EXPIRES_IN, description="seconds until it expires")
    reason: Reason = ""


MAX_BATCH = 100  # overrides per batch: well under the change log, so replicas follow it key by key


class OverrideItem(OverrideRequest):
    """One override of a batch: the request, and whose it is."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [{"policy": "default", "key": "203.0.113.9", "rate": "1000/minute",
                          "expires_in": 86400, "reason": "ticket 4711"}]
        },
    )  # fmt: skip
    policy: str = Field(max_length=64, description="the policy's name")
    key: str = Field(max_length=128, description="the client key as the policy counts it")


class OverrideBatch(BaseModel):
    """The body of ``POST /admin/v1/overrides``: stored all or none."""

    model_config = ConfigDict(extra="forbid", strict=True)
    overrides: list[OverrideItem] = Field(min_length=1, max_length=MAX_BATCH)


class OverrideView(BaseModel):
    """An override as the admin API answers it."""

    policy: str
    key: str = Field(description="the client key as the policy counts it")
    rate: RateText
    burst: Burst
    expires_at: float = Field(description="Unix seconds")
    reason: Reason
    created_by: str = Field(description="the admin token's name")
    created_at: float = Field(description="Unix seconds")
