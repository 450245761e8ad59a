"""CDR traffic from the carrier sandbox: call and message detail records for the numbers it has sold
(or the ones it is given), pushed to VoxLink's ingress (POST /v1/carrier/cdrs) in signed batches at a
chosen rate. One generator runs at a time; /admin/traffic starts, reads and stops it
(docs/CARRIER_SANDBOX.md, "CDR traffic").

The push protocol: `Authorization: Bearer <carrier key>`, `Content-Type: application/json` (a JSON array)
or `application/x-ndjson`, `Vox-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
202 answers `{"accepted": N, "rejected": M, "errors": [...]}`; 429/5xx and connection errors are retried
with exponential backoff and jitter, signed again with a fresh timestamp each time; a 401 stops the run
(the credential is wrong: retrying cannot help).
"""

import http.client
import json
import math
import random
import re
import threading
import time
import uuid
from urllib.parse import urlsplit

from signing import sign  # shared with porting's webhooks
from store import now_iso

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
MAX_ATTEMPTS = 8
# The mix of record types (weights) and of SMS segment counts.
TYPE_WEIGHTS = (("inbound_call", 35), ("outbound_call", 25), ("sms_received", 22), ("sms_sent", 18))
SEGMENT_WEIGHTS = ((1, 80), (2, 15), (3, 5))
UNANSWERED = 0.15  # share of calls with duration 0
# Other parties: area codes / prefixes that give plausible numbers in each country.
OTHER_PREFIXES = {"1": ["212", "213", "312", "415", "617", "646", "702", "305", "416", "604"],
                  "44": ["20", "161", "121", "7700", "7800"], "49": ["30", "40", "89", "151", "170"],
                  "33": ["1", "4", "6", "7"], "61": ["2", "3", "4", "7"]}


def parse_config(cfg):
    """Checks a /admin/traffic body (or VOX_CARRIER_TRAFFIC); returns the normalized config or raises
    ValueError naming the field."""
    if not isinstance(cfg, dict):
        raise ValueError("expected a JSON object")
    known = {"ingress_url", "carrier_key", "signing_secret", "rate_per_s", "batch_size", "duration_s",
             "count", "numbers", "format", "seed"}
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise ValueError("unknown field(s): %s" % ", ".join(unknown))
    out = {}
    url = cfg.get("ingress_url")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise ValueError("ingress_url must be an http(s) URL (e.g. http://127.0.0.1:18080)")
    out["ingress_url"] = url.rstrip("/")
    for k in ("carrier_key", "signing_secret"):
        if not isinstance(cfg.get(k), str) or not cfg[k]:
            raise ValueError("%s is required (a non-empty string)" % k)
        out[k] = cfg[k]

    def number(k, default, lo, hi, integer=False):
        v = cfg.get(k, default)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi or (
                integer and v != int(v)):
            raise ValueError("%s must be a number in %s..%s" % (k, lo, hi))
        return int(v) if integer else float(v)

    out["rate_per_s"] = number("rate_per_s", 10, 0.01, 100000)
    out["batch_size"] = number("batch_size", 50, 1, 5000, integer=True)
    out["duration_s"] = number("duration_s", None, 0.001, 10 ** 7)
    out["count"] = number("count", None, 1, 10 ** 9, integer=True)
    numbers = cfg.get("numbers")
    if numbers is not None:
        if not isinstance(numbers, list) or not numbers or not all(
                isinstance(n, str) and E164.match(n) for n in numbers):
            raise ValueError("numbers must be a non-empty array of E.164 strings")
    out["numbers"] = numbers
    fmt = cfg.get("format", "json")
    if fmt not in ("json", "ndjson"):
        raise ValueError("format must be json or ndjson")
    out["format"] = fmt
    out["seed"] = cfg.get("seed")
    return out


class Generator:
    """Makes realistic records: a weighted type mix, call durations from a log-normal (median about
    a minute, long tail, 15 % unanswered), 1-3 SMS segments, unique ids, started_at shortly before now."""

    def __init__(self, seed=None):
        self.rng = random.Random(seed)
        self.run = uuid.uuid4().hex[:12]
        self.seq = 0
        self.types = [t for t, _ in TYPE_WEIGHTS]
        self.type_w = [w for _, w in TYPE_WEIGHTS]

    def other_party(self, ours):
        rng = self.rng
        if rng.random() < 0.02:
            return "anonymous"
        cc = next((c for c in ("1", "44", "49", "33", "61") if ours.startswith("+" + c)), "1")
        if rng.random() < 0.2:  # an international party
            cc = rng.choice(list(OTHER_PREFIXES))
        prefix = rng.choice(OTHER_PREFIXES[cc])
        if cc == "1":
            rest = "%d%02d%04d" % (rng.randint(2, 9), rng.randint(0, 99), rng.randint(0, 9999))
        else:
            rest = "".join(str(rng.randint(0, 9)) for _ in range(9 - len(prefix) + (1 if cc == "49" else 0)))
        return "+%s%s%s" % (cc, prefix, rest)

    def record(self, number, now=None):
        rng = self.rng
        now = time.time() if now is None else now
        self.seq += 1
        kind = rng.choices(self.types, self.type_w)[0]
        other = self.other_party(number)
        inbound = kind in ("inbound_call", "sms_received")
        rec = {"id": "sbx-%s-%d" % (self.run, self.seq), "type": kind,
               "from": other if inbound else number, "to": number if inbound else other}
        if kind.endswith("_call"):
            if rng.random() < UNANSWERED:
                duration = 0
            else:
                duration = min(7200, max(1, int(rng.lognormvariate(math.log(60), 1.0))))
            rec["duration_s"] = duration
            started = now - duration - rng.uniform(0, 30)
        else:
            rec["segments"] = rng.choices([s for s, _ in SEGMENT_WEIGHTS], [w for _, w in SEGMENT_WEIGHTS])[0]
            started = now - rng.uniform(0, 30)
        rec["started_at"] = now_iso(started)
        return rec


class Traffic:
    """The one traffic run of the sandbox. sold_numbers() gives the E.164 numbers sold and not released."""

    def __init__(self, sold_numbers, log):
        self.sold_numbers = sold_numbers
        self.log = log
        self.lock = threading.Lock()
        self.thread = None
        self.stop_event = threading.Event()
        self.state = self._fresh(None)
        self.stop_reason = None

    @staticmethod
    def _fresh(cfg):
        return {"running": False, "sent": 0, "accepted": 0, "rejected": 0, "errors": 0, "retries": 0,
                "failed_records": 0, "batches": 0, "last_error": None, "started_at": None,
                "stopped_at": None, "stop_reason": None, "config": cfg}

    def status(self):
        with self.lock:
            st = dict(self.state)
        if st["config"]:
            st["config"] = {k: v for k, v in st["config"].items() if k not in ("carrier_key", "signing_secret")}
        return st

    def start(self, cfg):
        """cfg from parse_config(). False when a run is already going."""
        with self.lock:
            if self.state["running"]:
                return False
            self.stop_event = threading.Event()
            self.state = self._fresh(cfg)
            self.state["running"] = True
            self.state["started_at"] = now_iso()
            self.thread = threading.Thread(target=self._run, args=(cfg, self.stop_event), daemon=True,
                                           name="traffic")
            self.thread.start()
        self.log("traffic: started to %s at %.2f records/s in batches of %d%s%s" % (
            cfg["ingress_url"], cfg["rate_per_s"], cfg["batch_size"],
            ", for %g s" % cfg["duration_s"] if cfg["duration_s"] else "",
            ", %d records" % cfg["count"] if cfg["count"] else ""))
        return True

    def stop(self, reason="stopped"):
        with self.lock:
            th, ev = self.thread, self.stop_event
            self.stop_reason = reason
        ev.set()
        if th is not None and th is not threading.current_thread():
            th.join(10)
        with self.lock:
            if self.state["running"]:
                self._finish_locked(reason)
        return self.status()

    def _finish_locked(self, reason):
        self.state["running"] = False
        self.state["stopped_at"] = now_iso()
        self.state["stop_reason"] = reason

    def _bump(self, **kw):
        with self.lock:
            for k, v in kw.items():
                if k == "last_error":
                    self.state[k] = v
                else:
                    self.state[k] += v

    def _numbers(self, cfg):
        return cfg["numbers"] or self.sold_numbers()

    def _run(self, cfg, stop):
        gen = Generator(cfg["seed"])
        t0 = time.monotonic()
        made = 0
        reason = "finished"
        conn = None
        try:
            while not stop.is_set():
                if (cfg["duration_s"] and time.monotonic() - t0 >= cfg["duration_s"]) or (
                        cfg["count"] and made >= cfg["count"]):
                    break
                numbers = self._numbers(cfg)
                if not numbers:
                    self._bump(last_error="no numbers: the sandbox has sold none (order some, or pass numbers)")
                    stop.wait(1.0)
                    continue
                n = cfg["batch_size"]
                if cfg["count"]:
                    n = min(n, cfg["count"] - made)
                due = t0 + made / cfg["rate_per_s"]
                wait = due - time.monotonic()
                if wait > 0 and stop.wait(wait):
                    break
                now = time.time()
                batch = [gen.record(gen.rng.choice(numbers), now) for _ in range(n)]
                made += n
                conn, fatal = self._push(cfg, batch, conn, stop)
                if fatal:
                    reason = fatal
                    break
        except Exception as e:  # a bug here must show in the status, not kill the thread silently
            reason = "crashed: %r" % (e,)
            self._bump(last_error=reason)
        finally:
            if conn is not None:
                conn.close()
            with self.lock:
                if stop.is_set() and self.stop_reason:
                    reason = self.stop_reason
                if self.state["running"]:
                    self._finish_locked(reason)
            self.log("traffic: %s (%s)" % (reason, json.dumps({k: self.state[k] for k in (
                "sent", "accepted", "rejected", "errors", "retries", "failed_records")})))

    def _connect(self, cfg):
        u = urlsplit(cfg["ingress_url"])
        cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
        return cls(u.hostname, u.port, timeout=10)

    def _push(self, cfg, batch, conn, stop):
        """Sends one batch with retries. Returns (connection, fatal reason or None)."""
        if cfg["format"] == "ndjson":
            body = b"".join(json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in batch)
            ctype = "application/x-ndjson"
        else:
            body = json.dumps(batch, separators=(",", ":")).encode()
            ctype = "application/json"
        path = urlsplit(cfg["ingress_url"]).path.rstrip("/") + "/v1/carrier/cdrs"
        delay = 0.2
        for attempt in range(1, MAX_ATTEMPTS + 1):
            headers = {"Authorization": "Bearer " + cfg["carrier_key"], "Content-Type": ctype,
                       "Vox-Signature": sign(cfg["signing_secret"], int(time.time()), body)}
            status, answer, retry_after = None, None, None
            try:
                if conn is None:
                    conn = self._connect(cfg)
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                status, raw = resp.status, resp.read()
                retry_after = resp.getheader("Retry-After")
                try:
                    answer = json.loads(raw or b"null")
                except ValueError:
                    answer = None
                if resp.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                if conn is not None:
                    conn.close()
                conn = None
                err = "ingress unreachable: %s" % (e,)
            if status == 202 and isinstance(answer, dict):
                self._bump(sent=len(batch), batches=1, accepted=int(answer.get("accepted", 0)),
                           rejected=int(answer.get("rejected", 0)))
                if answer.get("rejected"):
                    self._bump(last_error="records rejected: %s" % json.dumps(answer.get("errors", [])[:3]))
                return conn, None
            if status is not None:
                code = (answer or {}).get("error", {}).get("code") if isinstance(answer, dict) else None
                err = "HTTP %d%s" % (status, " %s" % code if code else "")
            if status == 401 or status == 403:
                self._bump(errors=1, failed_records=len(batch), last_error=err)
                return conn, "refused by the ingress (%s): check the carrier key and signing secret" % err
            if status is not None and status not in (408, 425, 429) and status < 500:
                self._bump(errors=1, failed_records=len(batch), last_error=err)  # never helped by a retry
                return conn, None
            self._bump(retries=1, last_error=err)
            if attempt == MAX_ATTEMPTS:
                break
            wait = delay * (0.5 + random.random())
            if retry_after and retry_after.isdigit():
                wait = max(wait, float(retry_after))
            if stop.wait(min(wait, 10.0)):
                self._bump(errors=1, failed_records=len(batch))
                return conn, None
            delay = min(delay * 2, 5.0)
        self._bump(errors=1, failed_records=len(batch),
                   last_error="%s (gave up after %d attempts)" % (err, MAX_ATTEMPTS))
        return conn, None
