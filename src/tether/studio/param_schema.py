"""Parameters are checked at the studio, against the chosen pipeline's JSON schema from
the worker's catalog, before they are stored: a set the worker would refuse never
reaches it, and a rejected update changes nothing."""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema.exceptions import SchemaError

from tether.pipelines import DEFAULT_PIPELINE, describe, load_pipelines


def _multiple_of(validator: Any, step: Any, instance: Any, schema: Any) -> Any:
    """multipleOf as the worker's pydantic checks it: 0.3 is a multiple of 0.05, float
    rounding notwithstanding (plain jsonschema says it is not)."""
    if not validator.is_type(instance, "number") or isinstance(instance, bool):
        return
    quotient = instance / step
    if abs(quotient - round(quotient)) > 1e-9 * max(1.0, abs(quotient)):
        yield ValidationError(f"{instance!r} is not a multiple of {step}")


_Validator = validators.extend(Draft202012Validator, {"multipleOf": _multiple_of})

# The merged set travels as one data-channel message (aiortc's limit is 64 KiB) and with
# every offer: keep it well under both.
MAX_PARAMETERS_BYTES = 32 * 1024


class ParametersRejected(ValueError):
    """``field`` names the offending key (or ``pipeline``, or ``parameters``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


_local: list[dict[str, Any]] = []


def local_catalog() -> list[dict[str, Any]]:
    """The pipelines installed here, for checks made before any worker answered."""
    if not _local:
        _local.extend(describe(p) for p in load_pipelines().values())
    return _local


def merged_after(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(current)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def check_update(
    catalog: list[dict[str, Any]], current: dict[str, Any], changes: dict[str, Any]
) -> dict[str, Any]:
    """The merged set ``changes`` would make, or ParametersRejected. Keys of an earlier
    pipeline may linger in the merged set; keys this update sets must belong to the
    chosen one."""
    merged = merged_after(current, changes)
    name = merged.get("pipeline", DEFAULT_PIPELINE)
    pipelines = {p.get("name"): p for p in (catalog or local_catalog())}
    if not isinstance(name, str) or name not in pipelines:
        known = ", ".join(sorted(str(n) for n in pipelines))
        raise ParametersRejected("pipeline", f"unknown pipeline {name!r}; available: {known}")
    schema = pipelines[name].get("parameters") or {}
    properties = schema.get("properties") or {}
    for key, value in changes.items():
        if key != "pipeline" and value is not None and key not in properties:
            allowed = ", ".join(sorted(properties)) or "none"
            raise ParametersRejected(
                key, f"not a parameter of {name!r} (its parameters: {allowed})"
            )
    own = {k: v for k, v in merged.items() if k in properties}
    try:
        validator = _Validator(schema)
        error = next(iter(sorted(validator.iter_errors(own), key=lambda e: list(e.path))), None)
    except SchemaError:
        error = None  # a worker's broken schema is its problem: it will say so on apply
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "parameters"
        text = error.message
        if len(text) > 120:  # the message quotes the value: say the rule instead
            text = f"fails {error.validator} = {error.validator_value!r}"
        raise ParametersRejected(where, text)
    size = len(json.dumps(merged, separators=(",", ":")).encode())
    if size > MAX_PARAMETERS_BYTES:
        raise ParametersRejected(
            "parameters", f"the set would be {size} bytes; at most {MAX_PARAMETERS_BYTES}"
        )
    return merged
