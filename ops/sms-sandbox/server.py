#!/usr/bin/python3
"""VoxLink SMS sandbox: a stand-in for a Twilio-style SMS provider (Messages API, signed status
callbacks), with fault injection. See docs/SMS_SANDBOX.md.

  /usr/bin/python3 ops/sms-sandbox/server.py [--host 127.0.0.1] [--port 27081] [--state-dir DIR]

Settings (environment): VOX_SMS_PORT (27081), VOX_SMS_ACCOUNT_SID (AC_sandbox), VOX_SMS_AUTH_TOKEN
(sandbox-token), VOX_SMS_RECEIPT_DELAY_MS (200: before `sent`, and again before the final status),
VOX_SMS_CALLBACK_TRIES (3), VOX_SMS_CALLBACK_TIMEOUT_MS (5000), VOX_SMS_FAULTS (JSON rules),
VOX_SMS_FAULT_SEED (random).

The HTTP plumbing (body reading, JSON answers, connection reset) and the fault rules are the
carrier sandbox's (ops/carrier-sandbox/server.py, faults.py), imported, with this API's endpoints.
"""

import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import argparse  # noqa: E402
import base64  # noqa: E402
import hmac  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from http.server import ThreadingHTTPServer  # noqa: E402
from urllib.parse import parse_qs, urlsplit  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CARRIER_DIR = os.path.join(os.path.dirname(HERE), "carrier-sandbox")
sys.path.append(CARRIER_DIR)  # after ours: its api/faults/store/... modules, none of ours share a name

import faults as faults_mod  # noqa: E402
import receipts as receipts_mod  # noqa: E402
import twilio_api  # noqa: E402
from sms_store import Store  # noqa: E402
from twilio_api import ApiError  # noqa: E402

# The fault rules' endpoints here: send (POST Messages.json), list, get (GET one message).
faults_mod.ENDPOINTS = ("send", "list", "get")


def _carrier_server():
    spec = importlib.util.spec_from_file_location("carrier_server", os.path.join(CARRIER_DIR, "server.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


carrier_server = _carrier_server()
_log_lock = threading.Lock()


def log(msg):
    t = time.time()
    with _log_lock:
        sys.stderr.write("%s.%03dZ sms-sandbox: %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)),
                                                         int(t * 1000) % 1000, msg))
        sys.stderr.flush()


class App:
    def __init__(self, store, faults, receipts, account_sid, token):
        self.store, self.faults, self.receipts = store, faults, receipts
        self.account_sid, self.token = account_sid, token


def fault_error(status):
    return ApiError(status, 20000 + status if status in (429, 500, 502, 503, 504) else 20500,
                    "Sandbox fault injected: HTTP %d" % status)


class Handler(carrier_server.Handler):
    server_version = "sms-sandbox/1.0"

    def log_message(self, fmt, *args):
        log("%s %s" % (self.client_address[0], fmt % args))

    def send_error_json(self, err, headers=None):
        self.send_json(err.status, err.body(), headers)

    def dispatch(self):
        app = self.server.app
        t0 = time.monotonic()
        self.request_id = str(uuid.uuid4())
        self.status_sent = None
        url = urlsplit(self.path)
        try:
            body = self.read_body()
        except ValueError:
            self.send_json(413, ApiError(413, 20001, "Unreadable or too large body (max 1 MiB)").body(),
                           close=True)
            return
        query = parse_qs(url.query, keep_blank_values=True)
        note = ""
        if url.path == "/healthz":
            self.send_json(200, {"status": "ok", "service": "sms-sandbox", "messages": app.store.count()})
            return  # not logged: ops/stack polls it
        if url.path.startswith("/admin/"):
            self.admin(app, url.path, query, body)
        else:
            note = self.api(app, url.path, query, body)
        log("%s %s %s %s %.0fms%s" % (self.client_address[0], self.command, self.path, self.status_sent,
                                      (time.monotonic() - t0) * 1000, " [%s]" % note if note else ""))

    # -- the Messages API --------------------------------------------------------------------

    def route(self, path):
        """(endpoint, account sid in the path, message sid) or ApiError."""
        m = twilio_api.MESSAGES.fullmatch(path)
        if m:
            if self.command not in ("GET", "POST"):
                raise ApiError(405, 20004, "Method not allowed")
            return ("send" if self.command == "POST" else "list"), m.group(1), None
        m = twilio_api.MESSAGE.fullmatch(path)
        if m:
            if self.command != "GET":
                raise ApiError(405, 20004, "Method not allowed")
            return "get", m.group(1), m.group(2)
        raise ApiError(404, 20404, "The requested resource %s was not found" % path[:200])

    def api(self, app, path, query, body):
        try:
            endpoint, account_sid, sid = self.route(path)
        except ApiError as e:
            self.send_error_json(e)
            return ""
        d = app.faults.decide(endpoint)
        notes = []
        if d.latency_ms:
            time.sleep(d.latency_ms / 1000.0)
            notes.append("latency %dms" % d.latency_ms)
        if d.action and d.phase == "before":
            notes.append(self.inject(d, endpoint))
        else:
            try:
                self.authorize(app, account_sid)
                status, answer = self.answer(app, endpoint, account_sid, sid, query, body)
            except ApiError as e:
                status, answer = e.status, e.body()
            if d.action:  # phase "after": the work is done, the answer is lost
                notes.append("effect done (%d), then %s" % (status, self.inject(d, endpoint)))
            else:
                self.send_json(status, answer)
        app.faults.answered(endpoint, self.status_sent)
        return ", ".join(notes)

    def inject(self, d, endpoint):
        if d.action == "refuse":
            self.reset_connection()
            return "fault: connection reset"
        if d.action == "timeout":
            time.sleep(d.timeout_ms / 1000.0)
            self.send_json(504, fault_error(504).body(), close=True)
            return "fault: held %dms, then 504" % d.timeout_ms
        headers = {"Retry-After": str(d.retry_after)} if d.retry_after is not None else None
        self.send_json(d.status, fault_error(d.status).body(), headers)
        return "fault: %d on %s" % (d.status, endpoint)

    def authorize(self, app, account_sid):
        auth = self.headers.get("Authorization") or ""
        user = password = ""
        if auth[:6].lower() == "basic ":
            try:
                user, _, password = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                pass
        ok = hmac.compare_digest(user.encode("utf-8"), app.account_sid.encode("utf-8"))
        ok = hmac.compare_digest(password.encode("utf-8"), app.token.encode("utf-8")) and ok
        if not ok:
            raise ApiError(401, 20003, "Authenticate")
        if account_sid != user:
            raise ApiError(404, 20404, "The requested resource /2010-04-01/Accounts/%s was not found"
                           % account_sid[:64])

    def answer(self, app, endpoint, account_sid, sid, query, body):
        if endpoint == "send":
            msg = twilio_api.new_message(account_sid, twilio_api.parse_form(body), time.time())
            app.store.add(msg)
            app.receipts.start(msg)
            log("accepted %s to %s (%s segment(s))%s" % (msg["sid"], msg["to"], msg["num_segments"],
                                                         ", callback " + msg["status_callback"]
                                                         if msg["status_callback"] else ""))
            return 201, twilio_api.public(msg)
        if endpoint == "list":
            return 200, twilio_api.page(account_sid, app.store.all(), query)
        msg = app.store.get(sid)
        if msg is None or msg["account_sid"] != account_sid:
            raise ApiError(404, 20404, "The requested resource /2010-04-01/Accounts/%s/Messages/%s.json "
                                       "was not found" % (account_sid[:64], sid[:64]))
        return 200, twilio_api.public(msg)

    # -- /admin (no auth) -------------------------------------------------------------------

    def admin(self, app, path, query, body):
        m = self.command
        try:
            if path == "/admin/messages" and m == "GET":
                to = twilio_api.e164((query.get("to") or [""])[0])
                self.send_json(200, {"messages": app.store.all(to or None)})
            elif path == "/admin/faults" and m == "GET":
                self.send_json(200, self.faults_view(app))
            elif path == "/admin/faults" and m == "POST":
                self.set_faults(app, body)
                self.send_json(200, self.faults_view(app))
            elif path == "/admin/faults" and m == "DELETE":
                endpoint, to = (query.get("endpoint") or [None])[0], (query.get("to") or [None])[0]
                if endpoint or to:  # one rule: ?endpoint=send, ?to=+1... (receipts), ?to=* (receipts)
                    if endpoint:
                        app.faults.clear(endpoint)
                    if to:
                        app.receipts.clear(to if to == "*" else twilio_api.e164(to))
                else:
                    app.faults.clear()
                    app.receipts.clear()
                log("faults cleared%s" % (" (%s)" % ", ".join(filter(None, (endpoint, to))) if endpoint or to else ""))
                self.send_json(200, self.faults_view(app))
            elif path == "/admin/reset" and m == "POST":
                app.store.reset()
                app.faults.clear()
                app.faults.reset_stats()
                app.receipts.clear()
                log("reset: messages, faults, receipt rules and stats cleared")
                self.send_json(200, {"reset": True})
            elif path == "/admin/stats" and m == "GET":
                self.send_json(200, {**app.faults.stats(), "messages": app.store.count()})
            else:
                raise ApiError(404, 20404, "No admin route %s %s" % (m, path[:200]))
        except ApiError as e:
            self.send_error_json(e)

    @staticmethod
    def faults_view(app):
        return {"faults": app.faults.list(), "receipts": app.receipts.list()}

    def set_faults(self, app, body):
        """Every rule is checked before any applies: HTTP fault rules (the carrier sandbox's format,
        endpoint send|list|get|*, default send) and receipt rules, alone or in one object."""
        try:
            spec = json.loads(body.decode("utf-8") or "null")
            rules, receipts = parse_rules(spec, app.receipts.delay_ms)
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, 20001, "fault rule: %s" % e)
        app.faults.set(rules)
        app.receipts.set(receipts)
        log("faults set: %s" % json.dumps(self.faults_view(app)))


def parse_rules(spec, default_delay_ms):
    """([faults.Rule], {to: receipt rule}) from one rule, a list, or {"faults": [...]}."""
    if isinstance(spec, dict) and set(spec) == {"faults"}:
        spec = spec["faults"]
    items = spec if isinstance(spec, list) else [spec]
    rules, receipts = [], {}
    for item in items:
        if not isinstance(item, dict):
            raise faults_mod.FaultError("a fault rule is a JSON object")
        http = {k: v for k, v in item.items() if k not in receipts_mod._FIELDS}
        if receipts_mod.is_receipt_rule(item):
            to, rule = receipts_mod.parse_rule(item, default_delay_ms)
            receipts[to] = rule
        elif "to" in item:
            raise faults_mod.FaultError("\"to\" belongs to receipt rules (with \"receipt\")")
        if http:
            rules.extend(faults_mod.parse(dict({"endpoint": "send"}, **http)))
    if not rules and not receipts:
        raise faults_mod.FaultError("no rule given")
    return rules, receipts


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def main(argv=None):
    ap = argparse.ArgumentParser(description="VoxLink SMS sandbox (Twilio-style Messages API)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=None, help="default: VOX_SMS_PORT or 27081")
    ap.add_argument("--state-dir", default=None, help="keep messages in DIR/messages.json (default: memory)")
    args = ap.parse_args(argv)
    env_num = carrier_server.env_num
    port = args.port if args.port is not None else env_num("VOX_SMS_PORT", 27081, 0, 65535)
    delay = env_num("VOX_SMS_RECEIPT_DELAY_MS", 200, 0, 600000)
    tries = env_num("VOX_SMS_CALLBACK_TRIES", 3, 1, 20)
    timeout_ms = env_num("VOX_SMS_CALLBACK_TIMEOUT_MS", 5000, 100, 120000)
    account_sid = os.environ.get("VOX_SMS_ACCOUNT_SID") or "AC_sandbox"
    token = os.environ.get("VOX_SMS_AUTH_TOKEN") or "sandbox-token"

    faults = faults_mod.Faults(os.environ.get("VOX_SMS_FAULT_SEED") or None)
    try:
        if args.state_dir:
            os.makedirs(args.state_dir, exist_ok=True)
        store = Store(args.state_dir, log)
    except (OSError, ValueError, KeyError) as e:
        sys.stderr.write("sms-sandbox: cannot load state: %r\n" % e)
        return 1
    receipts = receipts_mod.Receipts(store, token, log, delay, tries, timeout_ms)
    raw = os.environ.get("VOX_SMS_FAULTS", "").strip()
    if raw:
        try:
            rules, rrules = parse_rules(json.loads(raw), delay)
        except ValueError as e:
            sys.stderr.write("sms-sandbox: VOX_SMS_FAULTS: %s\n" % e)
            return 2
        faults.set(rules)
        receipts.set(rrules)
    try:
        srv = Server((args.host, port), Handler)
    except OSError as e:
        sys.stderr.write("sms-sandbox: cannot listen on %s:%d: %s\n" % (args.host, port, e))
        return 1
    srv.app = App(store, faults, receipts, account_sid, token)

    stop = threading.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: stop.set())
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    log("listening on http://%s:%d (account %s, state %s)" % (args.host, srv.server_address[1], account_sid,
                                                              args.state_dir or "in memory only"))
    while not stop.wait(3600):
        pass
    log("stopping")
    srv.shutdown()
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
