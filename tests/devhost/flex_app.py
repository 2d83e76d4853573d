"""A tiny app for the Flex mode tests: each function reports the process and the disk it runs on.

Records are JSON files in FLEX_RECORD_DIR (the functions run in other processes than the test)."""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
QUEUE = os.environ.get("FLEX_QUEUE", "flex-work")


def where() -> dict[str, Any]:
    return {"pid": os.getpid(), "tmpdir": tempfile.gettempdir(), "home": os.environ.get("HOME", ""),
            "spool": os.environ.get("LEADS_SPOOL_DIR", "")}


def record(function: str, **details: Any) -> None:
    folder = Path(os.environ["FLEX_RECORD_DIR"])
    partial = folder / f"{uuid.uuid4().hex}.part"
    partial.write_text(json.dumps({"function": function, **where(), **details}), encoding="utf-8")
    partial.rename(partial.with_suffix(".json"))


@app.route(route="whoami", methods=["GET"])
def whoami(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(where()), mimetype="application/json")


@app.route(route="slow", methods=["GET"])
def slow(req: func.HttpRequest) -> func.HttpResponse:
    time.sleep(60)  # far past the tests' functionTimeout
    return func.HttpResponse("too late")


@app.queue_trigger(arg_name="msg", queue_name=QUEUE, connection="AzureWebJobsStorage")
def work(msg: func.QueueMessage) -> None:
    body = msg.get_body().decode("utf-8")
    dequeue_count = getattr(msg, "dequeue_count", None)
    record("work", body=body, dequeue_count=dequeue_count)
    if body == "slow" and dequeue_count == 1:
        time.sleep(60)  # the first attempt runs past functionTimeout; the next one finishes
    record("work-finished", body=body, dequeue_count=dequeue_count)


@app.timer_trigger(arg_name="timer", schedule="0 0 0 1 1 *", run_on_startup=True, use_monitor=False)
def tick(timer: func.TimerRequest) -> None:
    record("tick")
