#!/usr/bin/env python3
"""A customer's webhook endpoint for the integration tests: records every request, answers what the
test scripted for its path, and verifies Standard Webhooks signatures with the PyPI package
`standardwebhooks` (run it with ~/.cache/voxlink/st-venv/bin/python; ops/install-deps puts it there).

  webhook_receiver.py --host 127.0.0.77 --port P     prints "ready http://H:P" on stdout when listening

Every request to a path outside /_admin/ is recorded as {path, query, method, headers (lowercased
names), body (text), at (unix time), verified (true/false, null without secrets for the path),
verified_by (indexes of the secrets that verify), verify_error} and answered from the path's script.
  POST /_admin/script  {"path": "/a", "responses": [{"status": 500}, {"status": 200, "delay_ms": 50},
                        {"status": 302, "headers": {"Location": "http://10.0.0.1/"}}, ...],
                        "then": {"status": 200}}     responses in order, then `then` for ever
                        (default: 200 "ok"); a response may also have "body" (text)
  POST /_admin/secrets {"path": "/a", "secrets": ["whsec_...", ...]}
  GET  /_admin/received?path=/a[&min=N&timeout_ms=T]  the requests in arrival order (all paths
                        without path=); with min=N, waits up to T ms (default 10000) for N of them
  POST /_admin/reset   forgets scripts, secrets and requests
HTTP/1.1 with keep-alive, one thread per connection; SIGTERM/SIGINT stop it.
"""

import sys

sys.dont_write_bytecode = True

import argparse  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402
from urllib.parse import parse_qs, urlsplit  # noqa: E402

from standardwebhooks import Webhook  # noqa: E402

MAX_BODY = 4 << 20
DEFAULT = {"status": 200, "body": "ok"}


class AdminError(ValueError):
    pass


def check_response(r, where):
    if not isinstance(r, dict):
        raise AdminError("%s: a response is an object" % where)
    unknown = set(r) - {"status", "headers", "delay_ms", "body"}
    if unknown:
        raise AdminError("%s: unknown field(s) %s" % (where, ", ".join(sorted(unknown))))
    status = r.get("status", 200)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise AdminError("%s: status must be an integer in 100..599" % where)
    delay = r.get("delay_ms", 0)
    if isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay <= 600000:
        raise AdminError("%s: delay_ms must be an integer in 0..600000" % where)
    headers = r.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                for k, v in headers.items()):
        raise AdminError("%s: headers must be an object of strings" % where)
    if not isinstance(r.get("body", ""), str):
        raise AdminError("%s: body must be a string" % where)
    return {"status": status, "headers": headers, "delay_ms": delay, "body": r.get("body", "ok")}


class State:
    def __init__(self):
        self.cond = threading.Condition()
        self.reset()

    def reset(self):
        with self.cond:
            self.scripts = {}  # path -> {"responses": [...], "then": {...}}
            self.secrets = {}  # path -> [Webhook, ...]
            self.received = []
            self.cond.notify_all()

    def next_response(self, path):
        with self.cond:
            script = self.scripts.get(path)
            if script is None:
                return check_response(DEFAULT, "default")
            if script["responses"]:
                return script["responses"].pop(0)
            return script["then"]

    def record(self, entry):
        with self.cond:
            self.received.append(entry)
            self.cond.notify_all()

    def wait_received(self, path, min_count, timeout_s):
        deadline = time.monotonic() + timeout_s
        with self.cond:
            while True:
                rows = [r for r in self.received if path is None or r["path"] == path]
                left = deadline - time.monotonic()
                if len(rows) >= min_count or left <= 0:
                    return rows
                self.cond.wait(left)


def verify(webhooks, body, headers):
    """(verified, verified_by, error) of a request against the path's secrets."""
    if not webhooks:
        return None, [], None
    ok, errors = [], []
    for i, wh in enumerate(webhooks):
        try:
            wh.verify(body, headers, json_parse=False)
            ok.append(i)
        except Exception as e:  # WebhookVerificationError, or a malformed header
            errors.append("secret %d: %s" % (i, e))
    return bool(ok), ok, "; ".join(errors) if not ok else None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "voxlink-webhook-receiver/1.0"
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("webhook-receiver: %s %s\n" % (self.client_address[0], fmt % args))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = lambda self: self.dispatch()

    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline(1024)
                if len(out) > MAX_BODY:
                    raise ValueError("body too large")
        n = int(self.headers.get("Content-Length") or 0)
        if not 0 <= n <= MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(n)

    def reply(self, status, body, headers=None, content_type="text/plain"):
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def reply_json(self, status, obj):
        self.reply(status, json.dumps(obj), content_type="application/json")

    def dispatch(self):
        state = self.server.state
        url = urlsplit(self.path)
        try:
            body = self.read_body()
        except ValueError:
            self.close_connection = True
            self.reply_json(413, {"error": "unreadable or too large body"})
            return
        if url.path.startswith("/_admin/"):
            try:
                self.admin(state, url, body)
            except AdminError as e:
                self.reply_json(400, {"error": str(e)})
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        with state.cond:
            webhooks = list(state.secrets.get(url.path, []))
        verified, verified_by, error = verify(webhooks, body, headers)
        state.record({"path": url.path, "query": url.query, "method": self.command, "headers": headers,
                      "body": body.decode("utf-8", "replace"), "at": time.time(), "verified": verified,
                      "verified_by": verified_by, "verify_error": error})
        r = state.next_response(url.path)
        if r["delay_ms"]:
            time.sleep(r["delay_ms"] / 1000.0)
        self.reply(r["status"], r["body"], r["headers"])

    def admin(self, state, url, body):
        route = (self.command, url.path)
        if route == ("GET", "/_admin/received"):
            q = parse_qs(url.query)
            try:
                min_count = int((q.get("min") or ["0"])[0])
                timeout_s = int((q.get("timeout_ms") or ["10000"])[0]) / 1000.0
            except ValueError:
                raise AdminError("min and timeout_ms must be integers")
            path = (q.get("path") or [None])[0]
            self.reply_json(200, state.wait_received(path, min_count, min(timeout_s, 120.0)))
        elif route == ("POST", "/_admin/reset"):
            state.reset()
            self.reply_json(200, {"reset": True})
        elif route == ("POST", "/_admin/script"):
            spec = self.admin_json(body)
            responses = spec.get("responses", [])
            if not isinstance(responses, list):
                raise AdminError("responses must be a list")
            script = {"responses": [check_response(r, "responses[%d]" % i) for i, r in enumerate(responses)],
                      "then": check_response(spec.get("then", DEFAULT), "then")}
            with state.cond:
                state.scripts[spec["path"]] = script
            self.reply_json(200, {"path": spec["path"], "responses": len(script["responses"])})
        elif route == ("POST", "/_admin/secrets"):
            spec = self.admin_json(body)
            secrets = spec.get("secrets")
            if not isinstance(secrets, list) or not all(isinstance(s, str) for s in secrets):
                raise AdminError("secrets must be a list of strings")
            try:
                webhooks = [Webhook(s) for s in secrets]
            except Exception as e:  # bad base64, empty secret
                raise AdminError("bad secret: %s" % e)
            with state.cond:
                state.secrets[spec["path"]] = webhooks
            self.reply_json(200, {"path": spec["path"], "secrets": len(webhooks)})
        else:
            self.reply_json(404, {"error": "no admin route %s %s" % route})

    @staticmethod
    def admin_json(body):
        try:
            spec = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise AdminError("body is not JSON: %s" % e)
        if not isinstance(spec, dict) or not isinstance(spec.get("path"), str) or not spec["path"].startswith("/"):
            raise AdminError("expected an object with \"path\": \"/...\"")
        return spec


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def main():
    ap = argparse.ArgumentParser(description="webhook receiver for the integration tests")
    ap.add_argument("--host", default="127.0.0.77")
    ap.add_argument("--port", type=int, default=0, help="0: any free port (printed on the ready line)")
    ap.add_argument("--verbose", action="store_true", help="log every request on stderr")
    args = ap.parse_args()
    try:
        srv = Server((args.host, args.port), Handler)
    except OSError as e:
        sys.stderr.write("webhook-receiver: cannot listen on %s:%d: %s\n" % (args.host, args.port, e))
        return 1
    srv.state = State()
    srv.verbose = args.verbose
    stop = threading.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: stop.set())
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    print("ready http://%s:%d" % (args.host, srv.server_address[1]), flush=True)
    while not stop.wait(3600):
        pass
    srv.shutdown()
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
