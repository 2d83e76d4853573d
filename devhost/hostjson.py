"""The host.json options the local host honours, with the Functions host's defaults.

Defaults: Storage Queues extension 5.x `QueuesOptions` (batchSize 16, newBatchThreshold batchSize/2,
maxDequeueCount 5, visibilityTimeout 0, maxPollingInterval 1 min, messageEncoding base64) and
`extensions.http.routePrefix` "api" (learn.microsoft.com/azure/azure-functions/functions-host-json).
`functionTimeout`: 30 minutes when absent, the Flex Consumption default; "-1" means none
(learn.microsoft.com/azure/azure-functions/functions-scale#timeout). Enforced in Flex mode only.
An app setting `AzureFunctionsJobHost__<path>` overrides the host.json value at that path, as in the host
(functions-host-json, "Override host.json values"): `with_app_setting_overrides`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def parse_timespan(value: str | int | float) -> float:
    """Seconds in a .NET TimeSpan string such as "00:00:02" or "1.00:00:00" (days.hh:mm:ss)."""
    if isinstance(value, int | float):
        return float(value)
    days = 0
    text = value.strip()
    if "." in text.split(":")[0]:
        day_text, text = text.split(".", 1)
        days = int(day_text)
    parts = text.split(":")
    if len(parts) != 3:
        raise ValueError(f"host.json: {value!r} is not a TimeSpan such as 00:00:02")
    hours, minutes, seconds = int(parts[0]), int(parts[1]), float(parts[2])
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


@dataclass(frozen=True)
class QueueOptions:
    batch_size: int = 16
    new_batch_threshold: int = 8
    max_dequeue_count: int = 5
    visibility_timeout: float = 0.0
    max_polling_interval: float = 60.0
    message_encoding: str = "base64"


FLEX_DEFAULT_FUNCTION_TIMEOUT = 30 * 60.0
APP_SETTING_PREFIX = "AzureFunctionsJobHost__"


@dataclass(frozen=True)
class HostOptions:
    route_prefix: str = "api"
    queues: QueueOptions = QueueOptions()
    function_timeout: float | None = FLEX_DEFAULT_FUNCTION_TIMEOUT  # seconds; None: no limit


def with_app_setting_overrides(host_json: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """host.json with every `AzureFunctionsJobHost__a__b__c` app setting written at a.b.c. Keys match
    case-insensitively (.NET configuration), so `...__queues__maxPollingInterval` replaces `maxPollingInterval`."""
    merged: dict[str, Any] = copy.deepcopy(dict(host_json))
    for name, value in env.items():
        if not name.lower().startswith(APP_SETTING_PREFIX.lower()):
            continue
        *parents, leaf = name[len(APP_SETTING_PREFIX):].split("__")
        node = merged
        for part in parents:
            key = _key_in(node, part)
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[_key_in(node, leaf)] = value
    return merged


def _key_in(node: Mapping[str, Any], name: str) -> str:
    return next((key for key in node if key.lower() == name.lower()), name)


def read_function_timeout(value: Any) -> float | None:
    if value is None:
        return FLEX_DEFAULT_FUNCTION_TIMEOUT
    if str(value).strip() == "-1":
        return None
    return parse_timespan(value)


def read_host_options(host_json: Mapping[str, Any]) -> HostOptions:
    extensions = host_json.get("extensions") or {}
    http = extensions.get("http") or {}
    queues = extensions.get("queues") or {}
    batch_size = int(queues.get("batchSize", 16))
    encoding = str(queues.get("messageEncoding", "base64")).lower()
    if encoding not in ("base64", "none"):
        raise ValueError(f"host.json: extensions.queues.messageEncoding must be base64 or none, not {encoding!r}")
    return HostOptions(
        route_prefix=str(http.get("routePrefix", "api")).strip("/"),
        queues=QueueOptions(
            batch_size=batch_size,
            new_batch_threshold=int(queues.get("newBatchThreshold", batch_size // 2)),
            max_dequeue_count=int(queues.get("maxDequeueCount", 5)),
            visibility_timeout=parse_timespan(queues.get("visibilityTimeout", 0)),
            max_polling_interval=parse_timespan(queues.get("maxPollingInterval", 60)),
            message_encoding=encoding,
        ),
        function_timeout=read_function_timeout(host_json.get("functionTimeout")),
    )
