#!/usr/bin/python3
"""VoxLink carrier sandbox: a stand-in for a telecom provider's numbers API (Telnyx v2-like JSON over
HTTP/1.1), with fault injection. See docs/CARRIER_SANDBOX.md and ops/carrier-sandbox/README.md.

  /usr/bin/python3 ops/carrier-sandbox/server.py [--host 127.0.0.1] [--port 27080] [--state-dir DIR]

Settings (environment): VOX_CARRIER_PORT (27080), VOX_CARRIER_API_KEY (sandbox-key),
VOX_CARRIER_INVENTORY_PER_COUNTRY (3000), VOX_CARRIER_SEED (voxlink), VOX_CARRIER_QUARANTINE_S (0),
VOX_CARRIER_ORDER_DELAY_MS (0), VOX_CARRIER_IDEMPOTENCY_TTL_S (86400), VOX_CARRIER_FAULTS (JSON),
VOX_CARRIER_FAULT_SEED (random), VOX_CARRIER_TRAFFIC (JSON: CDR traffic started at once),
VOX_CARRIER_PORT_WEBHOOK_URL, VOX_CARRIER_PORT_KEY, VOX_CARRIER_PORT_SECRET (porting webhooks: none),
VOX_CARRIER_PORT_TIME_SCALE (8640), VOX_CARRIER_PORT_STEP_MS (200).
"""

import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import argparse  # noqa: E402
import hmac  # noqa: E402
import ipaddress  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import struct  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402
from urllib.parse import parse_qs, urlsplit  # noqa: E402

import api  # noqa: E402
import faults as faults_mod  # noqa: E402
import inventory  # noqa: E402
import porting  # noqa: E402
import traffic as traffic_mod  # noqa: E402
from store import Store, now_iso  # noqa: E402

MAX_BODY = 1 << 20
_log_lock = threading.Lock()


def log(msg):
    with _log_lock:
        sys.stderr.write("%s carrier-sandbox: %s\n" % (now_iso(), msg))
        sys.stderr.flush()


_FAULT_ERRORS = {
    429: ("10011", "Too many requests", "You have exceeded the maximum number of allowed requests."),
    504: ("10008", "Request timeout", "The request timed out."),
}


def fault_body(status, endpoint):
    code, title, detail = _FAULT_ERRORS.get(status, ("10007", "Unexpected error", "An unexpected error occurred."))
    if status == 503:
        title, detail = "Service unavailable", "The service is temporarily unavailable."
    return {"errors": [{"code": code, "title": title,
                        "detail": "%s (sandbox fault injected on endpoint %s)" % (detail, endpoint)}]}


class App:
    """What the handlers share: the store, the faults, the settings."""

    def __init__(self, store, faults, api_key, config):
        self.store = store
        self.faults = faults
        self.api_key = api_key.encode("utf-8")
        self.initial_config = dict(config)
        self.traffic = traffic_mod.Traffic(self.sold_numbers, log)
        self.porting = porting.Engine(store, log)

    def sold_numbers(self):
        with self.store.lock:
            return sorted(self.store.owned)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "carrier-sandbox/1.0"
    # Headers and body go out in separate writes: with Nagle on, a reused
    # keep-alive connection waited ~40 ms for the peer's delayed ACK
    # (bench/numbers), which a real carrier does not add.
    disable_nagle_algorithm = True

    def version_string(self):
        return self.server_version

    def log_request(self, code="-", size="-"):
        pass  # one line per request from dispatch() instead

    def log_message(self, fmt, *args):
        log("%s %s" % (self.client_address[0], fmt % args))

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = lambda self: self.dispatch()

    # -- transport ---------------------------------------------------------------------------

    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            out = b""
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline(1024)
                if len(out) > MAX_BODY:
                    raise ValueError("body too large")
        n = self.headers.get("Content-Length")
        if not n:
            return b""
        n = int(n)
        if n < 0 or n > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(n)

    def send_json(self, status, body, headers=None, close=False):
        data = json.dumps(body, separators=(",", ":")).encode("utf-8") if body is not None else b""
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Request-Id", self.request_id)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True
        self.status_sent = status

    def reset_connection(self):
        """Closes the connection at once with a TCP reset, answering nothing."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True
        self.status_sent = "reset"

    # -- dispatch ----------------------------------------------------------------------------

    def dispatch(self):
        app = self.server.app
        t0 = time.monotonic()
        self.request_id = str(uuid.uuid4())
        self.status_sent = None
        note = ""
        url = urlsplit(self.path)
        path = url.path
        try:
            body = self.read_body()
        except ValueError:
            self.send_json(413, api.error(413, 10015, "Bad Request", "Unreadable or too large body (max 1 MiB).").body,
                           close=True)
            self.finish_log(t0, path, "")
            return
        req = api.Request(self.command, path, parse_qs(url.query, keep_blank_values=True), self.headers, body)

        if path == "/healthz":
            self.send_json(200, {"status": "ok", "inventory": len(app.store.inventory),
                                 "owned": len(app.store.numbers)})
            return  # not logged: ops/stack polls it
        elif path.startswith("/admin/"):
            self.admin(app, req)
        else:
            endpoint, handler = api.route(self.command, path)
            if endpoint is None:
                resp = handler
                self.send_json(resp.status, resp.body, resp.headers)
            else:
                note = self.serve(app, endpoint, handler, req)
                app.faults.answered(endpoint, self.status_sent)
        self.finish_log(t0, self.path, note)

    def finish_log(self, t0, path, note):
        ms = (time.monotonic() - t0) * 1000
        log("%s %s %s %s %.0fms%s" % (self.client_address[0], self.command, path, self.status_sent, ms,
                                      " [%s]" % note if note else ""))

    def serve(self, app, endpoint, handler, req):
        d = app.faults.decide(endpoint)
        notes = []
        if d.latency_ms:
            time.sleep(d.latency_ms / 1000.0)
            notes.append("latency %dms" % d.latency_ms)
        if d.action and d.phase == "before":
            notes.append(self.inject(d, endpoint))
            return ", ".join(notes)
        if not self.authorized(app):
            r = api.error(401, 10009, "Authentication failed",
                          "The required authentication headers were either invalid or not included in the request.")
            self.send_json(r.status, r.body)
            return ", ".join(notes)
        try:
            resp = handler(app.store, req)
        except Exception as e:  # a bug of ours: answer like a carrier would, and say so in the log
            log("ERROR %s %s: %r" % (self.command, self.path, e))
            resp = api.error(500, 10007, "Unexpected error", "An unexpected error occurred.")
        if d.action and d.phase == "after":
            notes.append("effect done (%d), then %s" % (resp.status, self.inject(d, endpoint)))
            return ", ".join(notes)
        self.send_json(resp.status, resp.body, resp.headers)
        return ", ".join(notes)

    def inject(self, d, endpoint):
        if d.action == "refuse":
            self.reset_connection()
            return "fault: connection reset"
        if d.action == "timeout":
            time.sleep(d.timeout_ms / 1000.0)
            self.send_json(504, fault_body(504, endpoint), close=True)
            return "fault: held %dms, then 504" % d.timeout_ms
        headers = {"Retry-After": str(d.retry_after)} if d.retry_after is not None else None
        self.send_json(d.status, fault_body(d.status, endpoint), headers)
        return "fault: %d" % d.status

    def authorized(self, app):
        auth = self.headers.get("Authorization") or ""
        if not auth.startswith("Bearer "):
            return False
        return hmac.compare_digest(auth[7:].strip().encode("utf-8"), app.api_key)

    # -- /admin (loopback only, no key) ---------------------------------------------------------

    def admin(self, app, req):
        try:
            addr = ipaddress.ip_address(self.client_address[0])
            loopback = addr.is_loopback or (addr.version == 6 and addr.ipv4_mapped is not None
                                            and addr.ipv4_mapped.is_loopback)
        except ValueError:
            loopback = False
        if not loopback:
            self.send_json(403, api.error(403, 10010, "Authorization failed", "/admin is loopback-only.").body)
            return
        m, p = self.command, req.path
        if p == "/admin/faults" and m == "GET":
            self.send_json(200, {"faults": app.faults.list()})
        elif p == "/admin/faults" and m == "POST":
            try:
                rules = faults_mod.parse(json.loads(req.body.decode("utf-8") or "null"))
            except (ValueError, UnicodeDecodeError) as e:
                self.send_json(400, api.error(400, 10015, "Bad Request", "fault rule: %s" % e).body)
                return
            app.faults.set(rules)
            log("faults set: %s" % json.dumps([r.as_json() for r in rules]))
            self.send_json(200, {"faults": app.faults.list()})
        elif p == "/admin/faults" and m == "DELETE":
            app.faults.clear(req.q("endpoint"))
            log("faults cleared%s" % (" for %s" % req.q("endpoint") if req.q("endpoint") else ""))
            self.send_json(200, {"faults": app.faults.list()})
        elif p == "/admin/traffic":
            self.admin_traffic(app, req, m)
        elif p == "/admin/porting" and m == "GET":
            self.send_json(200, porting.admin_settings(app.store))
        elif p == "/admin/porting" and m == "POST":
            try:
                porting.admin_set(app.store, json.loads(req.body.decode("utf-8") or "null"))
            except (ValueError, UnicodeDecodeError) as e:
                self.send_json(400, api.error(400, 10015, "Bad Request", "porting: %s" % e).body)
                return
            out = porting.admin_settings(app.store)
            log("porting settings: %s" % json.dumps({k: out[k] for k in (
                "webhook_url", "api_key_set", "signing_secret_set", "time_scale", "step_ms")}))
            self.send_json(200, out)
        elif p == "/admin/porting/orders" and m == "GET":
            self.send_json(200, porting.admin_orders(app.store, req.q("customer_reference")))
        elif p == "/admin/reset" and m == "POST":
            app.traffic.stop("reset")
            app.store.reset()
            app.faults.clear()
            app.faults.reset_stats()
            self.apply_config(app, app.initial_config)
            app.store.port_wake()
            log("reset: inventory restored, orders/numbers/keys/faults/stats/porting orders cleared")
            self.send_json(200, {"reset": True, **app.store.counts()})
        elif p == "/admin/stats" and m == "GET":
            self.send_json(200, {**app.faults.stats(), **app.store.counts(), "config": self.config(app)})
        elif p == "/admin/config" and m == "GET":
            self.send_json(200, self.config(app))
        elif p == "/admin/config" and m == "POST":
            try:
                cfg = json.loads(req.body.decode("utf-8") or "null")
                if not isinstance(cfg, dict) or set(cfg) - {"quarantine_s", "order_delay_ms"}:
                    raise ValueError("expected {\"quarantine_s\": N, \"order_delay_ms\": N}")
                for k, v in cfg.items():
                    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                        raise ValueError("%s must be a number >= 0" % k)
            except (ValueError, UnicodeDecodeError) as e:
                self.send_json(400, api.error(400, 10015, "Bad Request", str(e)).body)
                return
            self.apply_config(app, cfg)
            self.send_json(200, self.config(app))
        else:
            self.send_json(404, api.error(404, 10005, "Resource not found", "No admin route %s %s." % (m, p)).body)

    def admin_traffic(self, app, req, m):
        if m == "GET":
            self.send_json(200, app.traffic.status())
        elif m == "DELETE":
            self.send_json(200, app.traffic.stop("stopped by DELETE /admin/traffic"))
        elif m == "POST":
            try:
                cfg = traffic_mod.parse_config(json.loads(req.body.decode("utf-8") or "null"))
            except (ValueError, UnicodeDecodeError) as e:
                self.send_json(400, api.error(400, 10015, "Bad Request", "traffic: %s" % e).body)
                return
            if not app.traffic.start(cfg):
                self.send_json(409, api.error(409, 10015, "Conflict",
                                              "traffic is already running: DELETE /admin/traffic first").body)
                return
            self.send_json(202, app.traffic.status())
        else:
            self.send_json(405, api.error(405, 10015, "Method not allowed", "GET, POST or DELETE.").body,
                           headers={"Allow": "GET, POST, DELETE"})

    @staticmethod
    def config(app):
        return {"quarantine_s": app.store.quarantine_s, "order_delay_ms": app.store.order_delay_ms}

    @staticmethod
    def apply_config(app, cfg):
        with app.store.lock:
            if "quarantine_s" in cfg:
                app.store.quarantine_s = float(cfg["quarantine_s"])
            if "order_delay_ms" in cfg:
                app.store.order_delay_ms = int(cfg["order_delay_ms"])


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def env_num(name, default, lo, hi, cast=int):
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        v = cast(raw)
    except ValueError:
        v = None
    if v is None or not lo <= v <= hi:
        sys.stderr.write("carrier-sandbox: %s=%r: expected a number in %s..%s\n" % (name, raw, lo, hi))
        sys.exit(2)
    return v


def main(argv=None):
    ap = argparse.ArgumentParser(description="VoxLink carrier sandbox (Telnyx v2-like numbers API)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=None, help="default: VOX_CARRIER_PORT or 27080")
    ap.add_argument("--state-dir", default=None, help="keep state in DIR/state.json (default: memory only)")
    args = ap.parse_args(argv)

    port = args.port if args.port is not None else env_num("VOX_CARRIER_PORT", 27080, 0, 65535)
    size = env_num("VOX_CARRIER_INVENTORY_PER_COUNTRY", 3000, 10, 100000)
    quarantine = env_num("VOX_CARRIER_QUARANTINE_S", 0.0, 0, 10 ** 7, float)
    delay = env_num("VOX_CARRIER_ORDER_DELAY_MS", 0, 0, 10 ** 7)
    ttl = env_num("VOX_CARRIER_IDEMPOTENCY_TTL_S", 86400.0, 1, 10 ** 8, float)
    seed = os.environ.get("VOX_CARRIER_SEED") or "voxlink"
    key = os.environ.get("VOX_CARRIER_API_KEY") or "sandbox-key"
    fault_seed = os.environ.get("VOX_CARRIER_FAULT_SEED") or None
    faults = faults_mod.Faults(fault_seed)
    raw_faults = os.environ.get("VOX_CARRIER_FAULTS", "").strip()
    if raw_faults:
        try:
            faults.set(faults_mod.parse(json.loads(raw_faults)))
        except ValueError as e:
            sys.stderr.write("carrier-sandbox: VOX_CARRIER_FAULTS: %s\n" % e)
            sys.exit(2)

    raw_traffic = os.environ.get("VOX_CARRIER_TRAFFIC", "").strip()
    traffic_cfg = None
    if raw_traffic:
        try:
            traffic_cfg = traffic_mod.parse_config(json.loads(raw_traffic))
        except ValueError as e:
            sys.stderr.write("carrier-sandbox: VOX_CARRIER_TRAFFIC: %s\n" % e)
            sys.exit(2)

    port_env = dict(porting.SETTINGS_DEFAULTS)
    port_env["time_scale"] = env_num("VOX_CARRIER_PORT_TIME_SCALE", 8640.0, 1, 10 ** 9, float)
    port_env["step_ms"] = env_num("VOX_CARRIER_PORT_STEP_MS", 200, 0, 600000)
    for name, field in (("VOX_CARRIER_PORT_WEBHOOK_URL", "webhook_url"), ("VOX_CARRIER_PORT_KEY", "api_key"),
                        ("VOX_CARRIER_PORT_SECRET", "signing_secret")):
        raw = os.environ.get(name, "")
        if raw:
            try:
                port_env.update(porting.check_settings({field: raw}))
            except ValueError as e:
                sys.stderr.write("carrier-sandbox: %s: %s\n" % (name, e))
                sys.exit(2)

    t0 = time.monotonic()
    inv = inventory.generate(size, seed)
    log("inventory: %d numbers (%d per country, seed %r) in %.2f s" % (
        len(inv), size, seed, time.monotonic() - t0))
    try:
        store = Store(inv, args.state_dir, quarantine, ttl, delay, log=log, port_env=port_env)
    except (OSError, ValueError) as e:
        sys.stderr.write("carrier-sandbox: cannot load state: %s\n" % e)
        sys.exit(1)
    app = App(store, faults, key, {"quarantine_s": quarantine, "order_delay_ms": delay})
    try:
        srv = Server((args.host, port), Handler)
    except OSError as e:
        sys.stderr.write("carrier-sandbox: cannot listen on %s:%d: %s\n" % (args.host, port, e))
        sys.exit(1)
    srv.app = app
    if faults.list():
        log("faults from VOX_CARRIER_FAULTS: %s" % json.dumps(faults.list()))

    stop = threading.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: stop.set())
    th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    th.start()
    log("listening on http://%s:%d (state %s)" % (args.host, srv.server_address[1],
                                                   args.state_dir or "in memory only"))
    if traffic_cfg is not None:
        app.traffic.start(traffic_cfg)
    app.porting.start()
    while not stop.wait(3600):
        pass
    log("stopping")
    app.traffic.stop("sandbox stopping")
    app.porting.stop()
    srv.shutdown()
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
