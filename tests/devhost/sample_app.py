"""A tiny Functions app for the local host's own tests: HTTP with a route parameter, a queue trigger that
fails on demand, a timer. Names come from the environment (read at import, as the real app does)."""

from __future__ import annotations

import json
import os
import time

import azure.functions as func

from tests.devhost import recorder

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
bp = func.Blueprint()
QUEUE = os.environ.get("SAMPLE_QUEUE", "sample-work")


@bp.route(route="items/{item_id}", methods=["GET", "POST"])
def echo_item(req: func.HttpRequest) -> func.HttpResponse:
    answer = {
        "method": req.method,
        "item_id": req.route_params.get("item_id"),
        "params": dict(req.params),
        "x_test": req.headers.get("x-test"),
        "body": req.get_body().decode("utf-8"),
        "url": req.url,
    }
    return func.HttpResponse(json.dumps(answer), status_code=201, mimetype="application/json",
                             headers={"X-Echo": "yes"})


@app.route(route="boom", methods=["GET"])
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("secret detail that must not reach the client")


@app.route(route="nap", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def nap(req: func.HttpRequest) -> str:
    time.sleep(float(req.params.get("s", "0")))
    return "rested"


@app.route(route="hello", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def hello(req: func.HttpRequest) -> str:
    return "hello"


@bp.queue_trigger(arg_name="msg", queue_name=QUEUE, connection="AzureWebJobsStorage")
def work(msg: func.QueueMessage) -> None:
    body = msg.get_body()
    record = recorder.RECORDER
    with record.lock:
        record.queue_calls.append((body, getattr(msg, "dequeue_count", None)))
    if body.startswith(b"sleep:"):
        time.sleep(float(body.split(b":")[1]))
    if body == b"fail":
        raise RuntimeError("failing on demand")
    if body.startswith(b"together") and record.barrier is not None:
        record.barrier.wait(timeout=10)  # breaks (and raises) unless enough invocations run at once


@bp.timer_trigger(arg_name="timer", schedule="%SAMPLE_SCHEDULE%",
                  run_on_startup=os.environ.get("SAMPLE_RUN_ON_STARTUP") == "true", use_monitor=False)
def tick(timer: func.TimerRequest) -> None:
    recorder.RECORDER.timer_calls.append(timer.past_due)


app.register_functions(bp)
