#!/usr/bin/python3
"""VoxLink payment sandbox: a stand-in for a Stripe-shaped card processor (payment methods, payment
intents, idempotency keys, declines with codes, signed webhooks), with fault injection and a ledger
of every charge actually taken. See docs/PAYMENT_SANDBOX.md.

  /usr/bin/python3 ops/payment-sandbox/server.py [--host 127.0.0.1] [--port 27082] [--state-dir DIR]

Settings (environment): VOX_PAYMENT_PORT (27082), VOX_PAYMENT_API_KEY (sk_sandbox),
VOX_PAYMENT_PUBLISHABLE_KEY (pk_sandbox), VOX_PAYMENT_WEBHOOK_URL (none: events are kept, not sent),
VOX_PAYMENT_WEBHOOK_SECRET (whsec_sandbox), VOX_PAYMENT_SETTLE_MS (0: cards settle at once; N: every
charge answers `processing` and settles N ms later), VOX_PAYMENT_WEBHOOK_TRIES (5),
VOX_PAYMENT_WEBHOOK_BACKOFF_MS (500, doubled), VOX_PAYMENT_WEBHOOK_TIMEOUT_MS (5000).
"""

import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import argparse  # noqa: E402
import hashlib  # noqa: E402
import hmac  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import queue  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
import uuid  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402
from urllib.parse import parse_qs, unquote_plus, urlsplit  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from gateway import ApiError, Gateway, invalid, public  # noqa: E402

MAX_BODY = 1 << 20
FAULTS = ("error_500", "timeout_after_charge", "latency", "drop_webhook")
_log_lock = threading.Lock()


def log(msg):
    t = time.time()
    with _log_lock:
        sys.stderr.write("%s.%03dZ payment-sandbox: %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)),
                                                             int(t * 1000) % 1000, msg))
        sys.stderr.flush()


def env_num(name, default, lo, hi):
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        v = int(raw)
    except ValueError:
        v = None
    if v is None or not lo <= v <= hi:
        sys.stderr.write("payment-sandbox: %s=%r: expected a number in %d..%d\n" % (name, raw, lo, hi))
        sys.exit(2)
    return v


def parse_form(body):
    """Stripe's form encoding: a=1&card[number]=4242&metadata[invoice_id]=x -> nested dicts."""
    out = {}
    text = body.decode("utf-8")
    for part in text.split("&"):
        if not part:
            continue
        k, _, v = part.partition("=")
        k, v = unquote_plus(k), unquote_plus(v)
        m = re.fullmatch(r"([A-Za-z0-9_]+)((?:\[[A-Za-z0-9_]*\])*)", k)
        if not m:
            raise invalid("Invalid parameter name: %s" % k[:64], k[:64])
        keys = [m.group(1)] + re.findall(r"\[([A-Za-z0-9_]*)\]", m.group(2))
        if len(keys) > 3 or "" in keys:
            raise invalid("Invalid parameter name: %s" % k[:64], k[:64])
        d = out
        for sub in keys[:-1]:
            d = d.setdefault(sub, {})
            if not isinstance(d, dict):
                raise invalid("Invalid parameter: %s" % k[:64], k[:64])
        if isinstance(d.get(keys[-1]), dict):
            raise invalid("Invalid parameter: %s" % k[:64], k[:64])
        d[keys[-1]] = v
    return out


def signature(secret, body, t=None):
    t = int(time.time()) if t is None else t
    mac = hmac.new(secret.encode("utf-8"), b"%d." % t + body, hashlib.sha256).hexdigest()
    return "t=%d,v1=%s" % (t, mac)


class Faults:
    """Rules for the next N payment intent requests, optionally of one payment method."""

    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []

    @staticmethod
    def parse(spec):
        items = spec if isinstance(spec, list) else (spec.get("faults") if isinstance(spec, dict) and
                                                      set(spec) == {"faults"} else [spec])
        if not isinstance(items, list) or not items:
            raise invalid("a fault rule is an object (or a list of them)", "fault")
        rules = []
        for it in items:
            if not isinstance(it, dict):
                raise invalid("a fault rule is a JSON object", "fault")
            extra = set(it) - {"fault", "count", "payment_method", "delay_ms", "latency_ms"}
            if extra:
                raise invalid("unknown field(s): %s" % ", ".join(sorted(extra))[:200], sorted(extra)[0][:64])
            f = it.get("fault")
            if f not in FAULTS:
                raise invalid("fault is one of %s" % ", ".join(FAULTS), "fault")
            count = it.get("count", 1)
            if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 1000:
                raise invalid("count is 1..1000", "count")
            pm = it.get("payment_method")
            if pm is not None and (not isinstance(pm, str) or not re.fullmatch(r"[A-Za-z0-9_]{1,120}", pm)):
                raise invalid("payment_method is a pm_ id", "payment_method")
            rule = {"fault": f, "count": count, "payment_method": pm}
            for k, default in (("delay_ms", 5000), ("latency_ms", 1000)):
                v = it.get(k, default)
                if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 600000:
                    raise invalid("%s is 0..600000" % k, k)
                if (k == "delay_ms" and f == "timeout_after_charge") or (k == "latency_ms" and f == "latency"):
                    rule[k] = v
            rules.append(rule)
        return rules

    def add(self, rules):
        with self.lock:
            self.rules.extend(rules)

    def take(self, pm):
        """The rules that apply to this request (each consumed once)."""
        hit = []
        with self.lock:
            for r in self.rules:
                if r["count"] > 0 and (r["payment_method"] is None or r["payment_method"] == pm):
                    r["count"] -= 1
                    hit.append(dict(r))
            self.rules = [r for r in self.rules if r["count"] > 0]
        return hit

    def list(self):
        with self.lock:
            return [dict(r) for r in self.rules]

    def clear(self):
        with self.lock:
            self.rules = []


class Webhooks:
    """Delivers events in a background thread, in order, each retried with backoff; the API answer
    never waits for it."""

    def __init__(self, gw, url, secret, tries, backoff_ms, timeout_ms):
        self.gw, self.url, self.secret = gw, url, secret
        self.tries, self.backoff_ms, self.timeout_s = tries, backoff_ms, timeout_ms / 1000.0
        self.q = queue.Queue()
        threading.Thread(target=self.run, name="webhooks", daemon=True).start()

    def send(self, ev):
        self.q.put(ev)

    def run(self):
        while True:
            ev = self.q.get()
            try:
                self.deliver(ev)
            except Exception as e:  # never let the thread die
                log("webhook %s: %r" % (ev["id"], e))

    def deliver(self, ev):
        url, secret = self.url, self.secret
        if ev.get("_dropped"):
            log("webhook %s %s dropped (fault)" % (ev["id"], ev["type"]))
            return
        if not url:
            return
        body = json.dumps(public(ev), separators=(",", ":")).encode("utf-8")
        for attempt in range(1, self.tries + 1):
            entry = {"attempt": attempt, "at": time.time(), "url": url}
            req = urllib.request.Request(url, data=body, method="POST", headers={
                "Content-Type": "application/json", "User-Agent": "payment-sandbox/1.0",
                "Gateway-Signature": signature(secret, body)})
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                    entry["status"] = r.status
            except urllib.error.HTTPError as e:
                entry["status"] = e.code
            except (OSError, ValueError) as e:
                entry["error"] = str(e)[:200]
            self.gw.event_delivered(ev["id"], entry)
            ok = 200 <= entry.get("status", 0) < 300
            log("webhook %s %s -> %s (attempt %d)" % (ev["id"], ev["type"], entry.get("status", entry.get("error")),
                                                       attempt))
            if ok:
                return
            if attempt < self.tries:
                time.sleep(self.backoff_ms * (2 ** (attempt - 1)) / 1000.0)


class App:
    def __init__(self, gw, faults, hooks, secret_key, publishable_key):
        self.gw, self.faults, self.hooks = gw, faults, hooks
        self.secret_key, self.publishable_key = secret_key, publishable_key

    def emit(self, events, dropped=False):
        for etype, pid in events:
            self.hooks.send(self.gw.make_event(etype, pid, dropped))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "payment-sandbox/1.0"
    disable_nagle_algorithm = True

    def version_string(self):
        return self.server_version

    def log_request(self, code="-", size="-"):
        pass  # one line per request from dispatch()

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def read_body(self):
        n = self.headers.get("Content-Length")
        if not n:
            return b""
        n = int(n)
        if n < 0 or n > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(n)

    def send_json(self, status, body, headers=None):
        data = json.dumps(body, separators=(",", ":")).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", self.request_id)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            self.close_connection = True
        self.status_sent = status

    def params(self, body):
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if not body:
            return {}
        try:
            if ctype == "application/json":
                p = json.loads(body.decode("utf-8"))
                if not isinstance(p, dict):
                    raise invalid("The body is a JSON object")
                return p
            return parse_form(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise invalid("Invalid request body: %s" % str(e)[:200])

    def dispatch(self):
        app = self.server.app
        t0 = time.monotonic()
        self.request_id = "req_" + uuid.uuid4().hex[:14]
        self.status_sent = None
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        note = ""
        try:
            body = self.read_body()
        except ValueError:
            self.send_json(413, invalid("Request body too large (max 1 MiB)").body())
            self.close_connection = True
            return
        if url.path == "/healthz":
            self.send_json(200, {"status": "ok", "service": "payment-sandbox", **app.gw.counts()})
            return  # not logged: ops/stack polls it
        try:
            if url.path.startswith("/admin/"):
                self.admin(app, url.path, query, body)
            elif url.path.startswith("/v1/"):
                note = self.api(app, url.path, body) or ""
            else:
                raise ApiError(404, "invalid_request_error", "Unrecognized request URL (%s: %s)."
                               % (self.command, url.path[:200]))
        except ApiError as e:
            self.send_json(e.status, e.body())
        log("%s %s %s %s %.0fms%s" % (self.client_address[0], self.command, self.path[:200], self.status_sent,
                                      (time.monotonic() - t0) * 1000, " [%s]" % note if note else ""))

    # -- the API -------------------------------------------------------------------------------

    def key_used(self, app):
        auth = self.headers.get("Authorization") or ""
        key = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if hmac.compare_digest(key.encode(), app.secret_key.encode()):
            return "secret"
        if hmac.compare_digest(key.encode(), app.publishable_key.encode()):
            return "publishable"
        if not key:
            raise ApiError(401, "invalid_request_error", "You did not provide an API key. You need to provide "
                           "your API key in the Authorization header, using Bearer auth.")
        raise ApiError(401, "invalid_request_error", "Invalid API Key provided: %s" % (key[:7] + "****"))

    def api(self, app, path, body):
        kind = self.key_used(app)
        m = self.command
        key = self.headers.get("Idempotency-Key")
        if path == "/v1/payment_methods" and m == "POST":
            p = self.params(body)
            return self.idempotent(app, kind, key, ("pm", p), lambda: (200, app.gw.create_method(p), []))
        if kind != "secret":
            raise ApiError(401, "invalid_request_error", "This API call cannot be made with a publishable API "
                           "key. Please use a secret API key.")
        mm = re.fullmatch(r"/v1/payment_methods/([^/]{1,200})", path)
        if mm and m == "GET":
            self.send_json(200, public(app.gw.method(mm.group(1))))
            return ""
        if path == "/v1/payment_intents" and m == "POST":
            q = app.gw.intent_params(self.params(body))
            return self.charge(app, key, q)
        mm = re.fullmatch(r"/v1/payment_intents/([^/]{1,200})", path)
        if mm and m == "GET":
            self.send_json(200, app.gw.intent(mm.group(1)))
            return ""
        raise ApiError(404, "invalid_request_error", "Unrecognized request URL (%s: %s)." % (m, path[:200]))

    def idempotent(self, app, scope, key, params, work):
        prior = app.gw.idem_begin(scope, key, params)
        if prior is not None:
            self.send_json(prior[0], prior[1], {"Idempotent-Replayed": "true"})
            return "replayed"
        try:
            status, answer, _ = work()
        except ApiError as e:
            status, answer = e.status, e.body()
        except Exception:
            app.gw.idem_end(scope, key, 500, None)
            raise
        app.gw.idem_end(scope, key, status, answer)
        self.send_json(status, answer)
        return ""

    def charge(self, app, key, q):
        hit = app.faults.take(q["payment_method"])
        names = [h["fault"] for h in hit]
        notes = []
        for h in hit:
            if h["fault"] == "latency":
                time.sleep(h["latency_ms"] / 1000.0)
                notes.append("latency %dms" % h["latency_ms"])
        if "error_500" in names:
            self.send_json(500, ApiError(500, "api_error", "An unknown error occurred (sandbox fault)").body())
            return ", ".join(notes + ["fault: 500, nothing charged"])
        prior = app.gw.idem_begin("secret", key, q)
        if prior is not None:
            status, answer = prior[0], prior[1]
            notes.append("replayed")
        else:
            try:
                status, answer, events = app.gw.create_intent(q, key, names)
            except ApiError as e:
                status, answer, events = e.status, e.body(), []
            except Exception:
                app.gw.idem_end("secret", key, 500, None)
                raise
            app.gw.idem_end("secret", key, status, answer)
            app.emit(events, "drop_webhook" in names)
            if "drop_webhook" in names:
                notes.append("fault: webhook dropped")
        for h in hit:
            if h["fault"] == "timeout_after_charge":
                notes.append("fault: done (%d), answer held %dms" % (status, h["delay_ms"]))
                time.sleep(h["delay_ms"] / 1000.0)
        headers = {"Idempotent-Replayed": "true"} if "replayed" in notes else None
        self.send_json(status, answer, headers)
        return ", ".join(notes)

    # -- /admin (no auth) ----------------------------------------------------------------------

    def admin(self, app, path, query, body):
        m = self.command
        first = lambda name: (query.get(name) or [None])[0]  # noqa: E731
        if path == "/admin/ledger" and m == "GET":
            rows = app.gw.ledger_rows(first("payment_method"), first("invoice_id"))
            self.send_json(200, {"object": "list", "data": rows, "count": len(rows)})
        elif path == "/admin/intents" and m == "GET":
            rows = app.gw.intent_rows(first("payment_method"), first("invoice_id"))
            self.send_json(200, {"object": "list", "data": rows, "count": len(rows)})
        elif path == "/admin/events" and m == "GET":
            rows = app.gw.event_rows(first("intent_id"))
            self.send_json(200, {"object": "list", "data": rows, "count": len(rows)})
        elif path == "/admin/faults" and m == "GET":
            self.send_json(200, {"faults": app.faults.list()})
        elif path == "/admin/faults" and m == "POST":
            rules = Faults.parse(self.json_body(body))
            app.faults.add(rules)
            log("faults added: %s" % json.dumps(rules))
            self.send_json(200, {"faults": app.faults.list()})
        elif path == "/admin/faults" and m == "DELETE":
            app.faults.clear()
            self.send_json(200, {"faults": []})
        elif path == "/admin/webhook" and m == "GET":
            self.send_json(200, {"url": app.hooks.url, "secret_set": bool(app.hooks.secret)})
        elif path == "/admin/webhook" and m == "POST":
            spec = self.json_body(body)
            url, secret = spec.get("url"), spec.get("secret")
            if url is not None and (not isinstance(url, str) or (url and not re.match(r"https?://", url))
                                    or len(url) > 2048):
                raise invalid("url is an http(s) URL (or \"\": no delivery)", "url")
            if secret is not None and (not isinstance(secret, str) or not 1 <= len(secret) <= 256):
                raise invalid("secret is 1..256 characters", "secret")
            if url is not None:
                app.hooks.url = url
            if secret is not None:
                app.hooks.secret = secret
            log("webhook target %s" % (app.hooks.url or "(none)"))
            self.send_json(200, {"url": app.hooks.url, "secret_set": bool(app.hooks.secret)})
        elif path == "/admin/reset" and m == "POST":
            app.gw.reset()
            app.faults.clear()
            log("reset: methods, intents, ledger, events, keys and faults cleared")
            self.send_json(200, {"reset": True})
        else:
            mm = re.fullmatch(r"/admin/payment_methods/([A-Za-z0-9_]{1,120})", path)
            if mm and m == "POST":
                spec = self.json_body(body)
                rec = app.gw.set_behavior(mm.group(1), spec.get("behavior"))
                log("payment method %s now %s" % (mm.group(1), rec["behavior"]))
                self.send_json(200, rec)
            elif mm and m == "GET":
                self.send_json(200, app.gw.method_admin(mm.group(1)))
            else:
                raise ApiError(404, "invalid_request_error", "No admin route %s %s" % (m, path[:200]))

    @staticmethod
    def json_body(body):
        try:
            spec = json.loads(body.decode("utf-8") or "null")
        except (ValueError, UnicodeDecodeError) as e:
            raise invalid("the body is JSON: %s" % str(e)[:200])
        if not isinstance(spec, (dict, list)):
            raise invalid("the body is a JSON object")
        return spec


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def settler(app, stop):
    """Settles processing intents when their time comes (also after a restart)."""
    while not stop.wait(0.1):
        try:
            app.emit(app.gw.settle_due())
        except Exception as e:
            log("settle: %r" % e)


def main(argv=None):
    ap = argparse.ArgumentParser(description="VoxLink payment sandbox (Stripe-shaped card processor)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=None, help="default: VOX_PAYMENT_PORT or 27082")
    ap.add_argument("--state-dir", default=None, help="keep the state in DIR/state.json (default: memory)")
    args = ap.parse_args(argv)
    port = args.port if args.port is not None else env_num("VOX_PAYMENT_PORT", 27082, 0, 65535)
    settle_ms = env_num("VOX_PAYMENT_SETTLE_MS", 0, 0, 3600000)
    tries = env_num("VOX_PAYMENT_WEBHOOK_TRIES", 5, 1, 20)
    backoff = env_num("VOX_PAYMENT_WEBHOOK_BACKOFF_MS", 500, 1, 600000)
    timeout_ms = env_num("VOX_PAYMENT_WEBHOOK_TIMEOUT_MS", 5000, 100, 120000)
    secret_key = os.environ.get("VOX_PAYMENT_API_KEY") or "sk_sandbox"
    publishable = os.environ.get("VOX_PAYMENT_PUBLISHABLE_KEY") or "pk_sandbox"
    hook_url = os.environ.get("VOX_PAYMENT_WEBHOOK_URL") or ""
    hook_secret = os.environ.get("VOX_PAYMENT_WEBHOOK_SECRET") or "whsec_sandbox"
    try:
        if args.state_dir:
            os.makedirs(args.state_dir, exist_ok=True)
        gw = Gateway(args.state_dir, log)
    except (OSError, ValueError, KeyError) as e:
        sys.stderr.write("payment-sandbox: cannot load state: %r\n" % e)
        return 1
    gw.settle_ms = settle_ms
    try:
        srv = Server((args.host, port), Handler)
    except OSError as e:
        sys.stderr.write("payment-sandbox: cannot listen on %s:%d: %s\n" % (args.host, port, e))
        return 1
    hooks = Webhooks(gw, hook_url, hook_secret, tries, backoff, timeout_ms)
    srv.app = App(gw, Faults(), hooks, secret_key, publishable)

    stop = threading.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: stop.set())
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    threading.Thread(target=settler, args=(srv.app, stop), name="settler", daemon=True).start()
    log("listening on http://%s:%d (webhooks to %s, state %s)" % (args.host, srv.server_address[1],
                                                                  hook_url or "nowhere",
                                                                  args.state_dir or "in memory only"))
    while not stop.wait(3600):
        pass
    log("stopping")
    srv.shutdown()
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
