#!/usr/bin/env python3
"""Publishes one small agent run to a user over agentsocket's HTTP API.

Standard library only (urllib): copy this file into any Python backend.

    AGENTSOCKET_URL=http://localhost:8080 AGENTSOCKET_API_KEY=... \
        python3 publish.py alice [run-id]

What it sends, to the user's open browsers and apps:
  1. agent_started with ?wait=5000: the gateway holds the answer until the
     user's socket is open (up to 5 s), so a run that starts before the page
     has connected is not missed.
  2. agent_thinking, tool_executing, tool_completed: one request each.
  3. the answer as token events and agent_completed, in one batch
     (POST /v1/events): one request, published in order.

Every event carries an id of its own, so sending it again after a timeout is
safe: the gateway answers "duplicate": true and does not deliver it twice.
"""

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid

GATEWAY = os.environ.get("AGENTSOCKET_URL", "http://localhost:8080").rstrip("/")
API_KEY = os.environ.get("AGENTSOCKET_API_KEY", "")


class GatewayError(Exception):
    """A refusal from the gateway: {"error": {"code", "message", "field"?}}."""

    def __init__(self, status, body):
        error = body.get("error", {}) if isinstance(body, dict) else {}
        self.status = status
        self.code = error.get("code", "unknown")
        self.field = error.get("field")
        super().__init__(f"{status} {self.code}: {error.get('message', body)}")


def post(path, body, timeout=35):
    """POSTs JSON to the gateway; returns the decoded answer or raises GatewayError."""
    request = urllib.request.Request(
        GATEWAY + path,
        data=json.dumps(body).encode("utf-8"),
        method="POST",
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        try:
            answer = json.load(error)
        except ValueError:
            answer = {}
        raise GatewayError(error.code, answer) from None


def publish(user_id, event, wait_ms=None):
    """POST /v1/users/{userId}/events: one event; ?wait= waits for the user's socket."""
    path = f"/v1/users/{urllib.parse.quote(user_id, safe='')}/events"
    if wait_ms is not None:
        path += f"?wait={int(wait_ms)}"
    return post(path, event)


def publish_batch(events):
    """POST /v1/events: events for any users, published in order; one result each."""
    return post("/v1/events", {"events": events})["results"]


def main(argv):
    if not API_KEY:
        print("set AGENTSOCKET_API_KEY to one of the gateway's API keys", file=sys.stderr)
        return 2
    user_id = argv[1] if len(argv) > 1 else "alice"
    run_id = argv[2] if len(argv) > 2 else f"run-{uuid.uuid4().hex[:8]}"

    def event(n, name, data):
        return {"id": f"{run_id}:{n}", "runId": run_id, "event": name, "data": data}

    question = "Weather in Paris?"
    first = event(1, "agent_started", {"agent": "weather", "input": question})
    started = publish(user_id, first, wait_ms=5000)
    print(json.dumps({"event": "agent_started", **started}))
    if started["delivered"] == 0:
        print(f"{user_id} has no open connection; the run is kept in history", file=sys.stderr)
    tool = {"toolCallId": "t1", "tool": "weather"}
    steps = [
        event(2, "agent_thinking", {"text": "Looking up the weather in Paris"}),
        event(3, "tool_executing", {**tool, "args": {"city": "Paris"}}),
        event(4, "tool_completed", {**tool, "result": {"celsius": 21}}),
    ]
    for step in steps:
        print(json.dumps({"event": step["event"], **publish(user_id, step)}))

    answer = ["It is ", "21 °C ", "in Paris."]
    batch = [{"userId": user_id, **event(5 + i, "token", {"t": t})} for i, t in enumerate(answer)]
    completed = {"status": "succeeded", "result": "".join(answer)}
    batch.append({"userId": user_id, **event(5 + len(answer), "agent_completed", completed)})
    for item, result in zip(batch, publish_batch(batch)):
        if "error" in result:
            raise GatewayError("batch item", result)
        print(json.dumps({"event": item["event"], **result}))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except GatewayError as error:
        print(f"agentsocket refused: {error}", file=sys.stderr)
        sys.exit(1)
    except urllib.error.URLError as error:
        print(f"agentsocket unreachable at {GATEWAY}: {error.reason}", file=sys.stderr)
        sys.exit(1)
