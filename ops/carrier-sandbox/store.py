"""The carrier sandbox's state: the (regenerated) inventory plus what changed since — owned numbers,
orders, idempotency keys, released numbers in quarantine, and porting (orders with their pending steps
and undelivered webhook events, and the porting settings set at run time: porting.py). Kept in memory under one lock and, when
a state dir is given, written to <state dir>/state.json (temp file + fsync + rename) after every
change, and read back on start: a restart keeps what was ordered.
"""

import datetime
import json
import os
import tempfile
import threading
import time

STATE_VERSION = 1


def now_iso(t=None):
    t = time.time() if t is None else t
    d = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (d.microsecond // 1000)


class Store:
    def __init__(self, inventory, state_dir=None, quarantine_s=0.0, idempotency_ttl_s=86400.0,
                 order_delay_ms=0, log=None, port_env=None):
        self.lock = threading.RLock()
        # porting: the settings from the environment (porting.SETTINGS_DEFAULTS' keys); run-time ones
        # (POST /admin/porting) are in self.port_settings, persisted, and win
        self.port_env = dict(port_env or {})
        self.port_wake = lambda: None  # set by porting.Engine: a state change for it to look at
        self.inventory = inventory
        self.by_e164 = {r.e164: r for r in inventory}
        self.by_country = {}
        for r in inventory:
            self.by_country.setdefault(r.country, []).append(r)
        self.state_dir = state_dir
        self.path = os.path.join(state_dir, "state.json") if state_dir else None
        self.quarantine_s = quarantine_s
        self.idempotency_ttl_s = idempotency_ttl_s
        self.order_delay_ms = order_delay_ms
        self.log = log or (lambda msg: None)
        self._clear()
        self.load()

    def _clear(self):
        self.numbers = {}      # id -> owned number (dict, stored form)
        self.owned = {}        # e164 -> id
        self.orders = {}       # id -> order (dict, stored form)
        self.idempotency = {}  # key -> {"scope", "fingerprint", "status", "body", "at"}
        self.quarantine = {}   # e164 -> epoch seconds when it is sellable again
        self.port_orders = {}    # id -> porting order (porting.py's stored form)
        self.port_settings = {}  # porting settings set at run time

    # -- persistence ----------------------------------------------------------------------------

    def load(self):
        if not self.path or not os.path.exists(self.path):
            return
        with open(self.path, encoding="utf-8") as f:
            doc = json.load(f)
        if doc.get("version") != STATE_VERSION:
            raise ValueError("%s: state version %r, expected %d" % (self.path, doc.get("version"),
                                                                    STATE_VERSION))
        self.numbers = doc.get("numbers", {})
        self.orders = doc.get("orders", {})
        self.idempotency = doc.get("idempotency", {})
        self.quarantine = doc.get("quarantine", {})
        self.port_orders = doc.get("port_orders", {})
        self.port_settings = doc.get("port_settings", {})
        self.owned = {n["phone_number"]: i for i, n in self.numbers.items()}
        self.log("state: loaded %s (%d numbers, %d orders, %d idempotency keys, %d porting orders)" % (
            self.path, len(self.numbers), len(self.orders), len(self.idempotency), len(self.port_orders)))

    def save(self):
        """Writes the state atomically; call with the lock held, after every change."""
        if not self.path:
            return
        now = time.time()
        for k in [k for k, v in self.idempotency.items() if now - v["at"] > self.idempotency_ttl_s]:
            del self.idempotency[k]
        for k in [k for k, until in self.quarantine.items() if until <= now]:
            del self.quarantine[k]
        doc = {"version": STATE_VERSION, "saved_at": now_iso(now), "numbers": self.numbers,
               "orders": self.orders, "idempotency": self.idempotency, "quarantine": self.quarantine,
               "port_orders": self.port_orders, "port_settings": self.port_settings}
        os.makedirs(self.state_dir, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".state.", suffix=".tmp", dir=self.state_dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(doc, f, separators=(",", ":"))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def reset(self):
        with self.lock:
            self._clear()
            self.save()

    # -- queries ----------------------------------------------------------------------------------

    def port_setting(self, name):
        if name in self.port_settings:
            return self.port_settings[name]
        return self.port_env[name]

    def available(self, e164, now=None):
        if e164 in self.owned:
            return False
        until = self.quarantine.get(e164)
        return until is None or until <= (time.time() if now is None else now)

    def number_view(self, n, now=None):
        """The public form of an owned number (purchase-pending until its activation time)."""
        now = time.time() if now is None else now
        out = {k: v for k, v in n.items() if not k.startswith("_")}
        if out["status"] == "purchase-pending" and n.get("_active_at", 0) <= now:
            out["status"] = "active"
        out["call_forwarding"] = dict(n["call_forwarding"])
        out["tags"] = list(n["tags"])
        return out

    def order_view(self, o, now=None):
        now = time.time() if now is None else now
        out = {k: v for k, v in o.items() if not k.startswith("_")}
        out["phone_numbers"] = [dict(p) for p in o["phone_numbers"]]
        if o.get("_active_at", 0) > now and out["status"] != "failure":
            out["status"] = "pending"
            for p in out["phone_numbers"]:
                if p["status"] == "success":
                    p["status"] = "pending"
        return out

    def counts(self):
        with self.lock:
            now = time.time()
            avail = {}
            for cc, recs in self.by_country.items():
                avail[cc] = sum(1 for r in recs if self.available(r.e164, now))
            return {"inventory": len(self.inventory), "available": avail,
                    "owned": len(self.numbers), "orders": len(self.orders),
                    "idempotency_keys": len(self.idempotency), "quarantined": len(
                        [1 for u in self.quarantine.values() if u > now]),
                    "porting_orders": len(self.port_orders)}
