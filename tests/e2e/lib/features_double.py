#!/usr/bin/env python3
"""TEST DOUBLE, declared as such: Elasticsearch's ILM, SLM, watcher and ML upgrade mode, which
the local integ-test distribution does not have (they are x-pack modules outside it and no
reachable registry publishes them). An HTTP proxy in front of the real node: it answers the
status, stop and start calls of those four features from an in-memory state, as the real
APIs answer them, and forwards every other request to the real node unchanged.

In front of an OpenSearch node it stands in for the ISM switch of the index-management plugin
(not published on Maven Central) once the state has "ism" (the persistent value of
plugins.index_state_management.enabled, null when unset): _cat/plugins lists the plugin, and
_cluster/settings reads and writes that one setting here, the rest on the real node.

Usage: features_double.py LISTEN_ADDR LISTEN_PORT UPSTREAM_URL
Control (for the test only): GET /_double/state, PUT /_double/state {..} to set the state and
the faults ({"fail": ["ilm_start"]} makes POST /_ilm/start answer 500; {"hold": {"ilm_start":
60}} holds that call 60 s before it answers, as an overloaded master does), GET /_double/calls.
"""
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {"ilm": "RUNNING", "slm": "RUNNING", "watcher": "started", "ml_upgrade_mode": False, "fail": [], "hold": {}}
ISM_KEY = "plugins.index_state_management.enabled"


def ism_emulated():
    with LOCK:
        return "ism" in STATE


def ism_answer(method, path, upstream_answer):
    """The real node's answer to a read of _cat/plugins (as JSON) or _cluster/settings, with
    the ISM plugin and switch put in."""
    route = path.split("?", 1)[0].rstrip("/")
    if method == "GET" and route == "/_cat/plugins" and "format=json" in path:
        plugins = json.loads(upstream_answer)
        plugins.append({"name": "double", "component": "opensearch-index-management", "version": "double"})
        return json.dumps(plugins).encode()
    if method == "GET" and route == "/_cluster/settings":
        settings = json.loads(upstream_answer)
        with LOCK:
            if STATE["ism"] is not None:
                settings.setdefault("persistent", {})[ISM_KEY] = STATE["ism"]
        return json.dumps(settings).encode()
    return upstream_answer


def ism_write(body):
    """Takes the ISM switch out of a PUT _cluster/settings body; returns the body to forward
    (None when nothing is left)."""
    request = json.loads(body or b"{}")
    for scope in ("persistent", "transient"):
        value = request.get(scope, {}).pop(ISM_KEY, "absent")
        if value != "absent":
            with LOCK:
                STATE["ism"] = None if value is None else str(value).lower()
                CALLS.append(f"ism_{scope}={STATE['ism']}")
    if not any(request.get(scope) for scope in ("persistent", "transient")):
        return None
    return json.dumps(request).encode()
CALLS = []


def emulated(method, path):
    """The double's answer (status, body) for a feature call, or None to forward it."""
    route = path.split("?", 1)[0].rstrip("/")
    query = path.split("?", 1)[1] if "?" in path else ""
    with LOCK:
        if route == "/_ilm/status" and method == "GET":
            return 200, {"operation_mode": STATE["ilm"]}
        if route == "/_slm/status" and method == "GET":
            return 200, {"operation_mode": STATE["slm"]}
        if route == "/_watcher/stats" and method == "GET":
            return 200, {"_nodes": {"total": 1, "successful": 1, "failed": 0}, "cluster_name": "double",
                         "manually_stopped": STATE["watcher"] == "stopped",
                         "stats": [{"node_id": "n1", "watcher_state": STATE["watcher"], "watch_count": 0}]}
        if route == "/_ml/info" and method == "GET":
            return 200, {"defaults": {}, "upgrade_mode": STATE["ml_upgrade_mode"], "limits": {}}
        actions = {
            ("POST", "/_ilm/stop"): ("ilm_stop", "ilm", "STOPPED"),
            ("POST", "/_ilm/start"): ("ilm_start", "ilm", "RUNNING"),
            ("POST", "/_slm/stop"): ("slm_stop", "slm", "STOPPED"),
            ("POST", "/_slm/start"): ("slm_start", "slm", "RUNNING"),
            ("POST", "/_watcher/_stop"): ("watcher_stop", "watcher", "stopped"),
            ("POST", "/_watcher/_start"): ("watcher_start", "watcher", "started"),
        }
        if route == "/_ml/set_upgrade_mode" and method == "POST":
            enabled = "enabled=true" in query
            name = "ml_upgrade_on" if enabled else "ml_upgrade_off"
            CALLS.append(name)
            if name in STATE["fail"]:
                return 500, {"error": {"type": "double_fault", "reason": f"{name} fails (test double)"}, "status": 500}
            STATE["ml_upgrade_mode"] = enabled
            return 200, {"acknowledged": True}
        if (method, route) in actions:
            name, key, value = actions[(method, route)]
            CALLS.append(name)
            if name in STATE["fail"]:
                return 500, {"error": {"type": "double_fault", "reason": f"{name} fails (test double)"}, "status": 500}
            STATE[key] = value
            return 200, {"acknowledged": True}, STATE["hold"].get(name, 0)
    return None


class Handler(BaseHTTPRequestHandler):
    upstream = ""

    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if self.path.startswith("/_double/"):
            with LOCK:
                if self.path == "/_double/state" and self.command == "PUT":
                    STATE.update(json.loads(body or b"{}"))
                if self.path == "/_double/calls":
                    return self.reply(200, list(CALLS))
                return self.reply(200, dict(STATE))
        route = self.path.split("?", 1)[0].rstrip("/")
        if ism_emulated() and self.command == "PUT" and route == "/_cluster/settings":
            body = ism_write(body)
            if body is None:
                return self.reply(200, {"acknowledged": True, "persistent": {}, "transient": {}})
        answer = emulated(self.command, self.path)
        if answer is not None:
            if len(answer) == 3:
                # A held call: answered late, outside the lock.
                time.sleep(answer[2])
                answer = answer[:2]
            return self.reply(*answer)
        request = urllib.request.Request(self.upstream + self.path, data=body, method=self.command)
        for name in ("Content-Type", "Authorization"):
            if self.headers.get(name):
                request.add_header(name, self.headers[name])
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                data = response.read()
                if ism_emulated() and response.status == 200:
                    data = ism_answer(self.command, self.path, data)
                self.reply(response.status, data, response.headers.get("Content-Type", "application/json"))
        except urllib.error.HTTPError as error:
            self.reply(error.code, error.read(), error.headers.get("Content-Type", "application/json"))

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any


def main():
    addr, port, upstream = sys.argv[1], int(sys.argv[2]), sys.argv[3].rstrip("/")
    Handler.upstream = upstream
    server = ThreadingHTTPServer((addr, port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
