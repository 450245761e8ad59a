"""The payment sandbox's state and rules: payment methods (test cards), payment intents, the ledger
of charges actually taken, idempotency keys, events, under one lock, kept in DIR/state.json (atomic
rewrite) when the sandbox runs with --state-dir, so a restart keeps all of it. No HTTP here
(server.py). See docs/PAYMENT_SANDBOX.md."""

import copy
import hashlib
import json
import os
import re
import secrets
import threading
import time

MAX_ROWS = 20000  # intents, ledger rows, events, idempotency keys each: the oldest go past it
MAX_AMOUNT = 99999999  # Stripe's limit: eight digits of minor units
MAX_KEY = 255

# Stripe's test cards: number -> behaviour when charged.
TEST_CARDS = {
    "4242424242424242": "succeed",
    "4000056655665556": "succeed",
    "5555555555554444": "succeed",
    "4000000000009995": "insufficient_funds",
    "4000000000000069": "expired_card",
    "4000000000000002": "generic_decline",
    "4000000000000119": "processing_error",
    "4000000000000127": "incorrect_cvc",
    "4000000000009987": "lost_card",
    "4000000000009979": "stolen_card",
}

# Prefabricated methods, as Stripe's pm_card_* test ids (present in every state).
PREFAB = {
    "pm_card_visa": ("4242424242424242", "succeed"),
    "pm_card_insufficient_funds": ("4000000000009995", "insufficient_funds"),
    "pm_card_expired": ("4000000000000069", "expired_card"),
    "pm_card_declined": ("4000000000000002", "generic_decline"),
    "pm_card_processing_error": ("4000000000000119", "processing_error"),
    "pm_card_incorrect_cvc": ("4000000000000127", "incorrect_cvc"),
    "pm_card_processing": ("4242424242424242", "processing"),
}

# decline -> (error code, decline_code or None, message), as Stripe answers them.
DECLINES = {
    "generic_decline": ("card_declined", "generic_decline", "Your card was declined."),
    "insufficient_funds": ("card_declined", "insufficient_funds", "Your card has insufficient funds."),
    "lost_card": ("card_declined", "lost_card", "Your card was declined."),
    "stolen_card": ("card_declined", "stolen_card", "Your card was declined."),
    "do_not_honor": ("card_declined", "do_not_honor", "Your card was declined."),
    "try_again_later": ("card_declined", "try_again_later", "Your card was declined."),
    "issuer_not_available": ("card_declined", "issuer_not_available", "Your card was declined."),
    "card_velocity_exceeded": ("card_declined", "card_velocity_exceeded",
                               "Your card was declined for making repeated attempts too frequently or "
                               "exceeding its amount limit."),
    "expired_card": ("expired_card", "expired_card", "Your card has expired."),
    "processing_error": ("processing_error", None,
                         "An error occurred while processing your card. Try again in a little bit."),
    "incorrect_cvc": ("incorrect_cvc", None, "Your card's security code is incorrect."),
}
BEHAVIORS = ("succeed", "processing") + tuple(DECLINES)
ALIASES = {"card_declined": "generic_decline"}

ID_RE = re.compile(r"[A-Za-z0-9_]{1,120}")


class ApiError(Exception):
    """An answer in Stripe's error shape: {"error": {type, code, decline_code, message, param,
    payment_intent}}."""

    def __init__(self, status, etype, message, code=None, param=None, decline_code=None, extra=None):
        super().__init__(message)
        self.status, self.etype, self.message = status, etype, message
        self.code, self.param, self.decline_code, self.extra = code, param, decline_code, extra or {}

    def body(self):
        e = {"type": self.etype, "message": self.message}
        for k in ("code", "param", "decline_code"):
            if getattr(self, k) is not None:
                e[k] = getattr(self, k)
        e.update(self.extra)
        return {"error": e}


def invalid(message, param=None, code="parameter_invalid"):
    return ApiError(400, "invalid_request_error", message, code=code, param=param)


def new_id(prefix):
    return prefix + secrets.token_hex(12)


def luhn_ok(number):
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def brand_of(number):
    if number.startswith("4"):
        return "visa"
    if number[:2] in ("51", "52", "53", "54", "55") or "2221" <= number[:4] <= "2720":
        return "mastercard"
    if number[:2] in ("34", "37"):
        return "amex"
    if number.startswith("6011") or number.startswith("65"):
        return "discover"
    return "unknown"


def as_int(value, param, lo, hi):
    if isinstance(value, bool):
        raise invalid("Invalid integer: %s" % value, param)
    if isinstance(value, int):
        v = value
    elif isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,18}", value):
        v = int(value)
    else:
        raise invalid("Invalid integer: %s" % str(value)[:64], param)
    if not lo <= v <= hi:
        raise invalid("%s must be between %d and %d" % (param, lo, hi), param)
    return v


def as_bool(value, param):
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise invalid("Invalid boolean: %s" % str(value)[:64], param)


def metadata_of(value):
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise invalid("Invalid hash", "metadata")
    if len(value) > 50:
        raise invalid("metadata can have at most 50 keys", "metadata")
    out = {}
    for k, v in value.items():
        if not isinstance(k, str) or not 1 <= len(k) <= 40:
            raise invalid("metadata keys are 1 to 40 characters", "metadata")
        if not isinstance(v, (str, int)) or isinstance(v, bool) or len(str(v)) > 500:
            raise invalid("metadata values are strings of at most 500 characters", "metadata[%s]" % k)
        out[k] = str(v)
    return out


def params_hash(params):
    return hashlib.sha256(json.dumps(params, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class Gateway:
    def __init__(self, state_dir=None, log=None):
        self.lock = threading.Lock()
        self.path = os.path.join(state_dir, "state.json") if state_dir else None
        self.log = log or (lambda m: None)
        self.methods, self.intents, self.idem = {}, {}, {}  # id -> record, in arrival order
        self.ledger, self.events = [], []
        if self.path and os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as f:
                s = json.load(f)
            self.methods = {m["id"]: m for m in s.get("methods", [])}
            self.intents = {i["id"]: i for i in s.get("intents", [])}
            self.idem = {k["key"]: k for k in s.get("idempotency", []) if k.get("state") == "done"}
            self.ledger = s.get("ledger", [])
            self.events = s.get("events", [])
        for pm, (number, behavior) in PREFAB.items():
            if pm not in self.methods:
                self.methods[pm] = self.method_record(pm, number, 12, 2034, behavior)

    # -- persistence ---------------------------------------------------------------------------

    def save(self):  # under self.lock
        for d in (self.intents, self.idem):
            while len(d) > MAX_ROWS:
                del d[next(iter(d))]
        del self.ledger[:-MAX_ROWS]
        del self.events[:-MAX_ROWS]
        if not self.path:
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"methods": list(self.methods.values()), "intents": list(self.intents.values()),
                       "idempotency": [k for k in self.idem.values() if k["state"] == "done"],
                       "ledger": self.ledger, "events": self.events}, f)
        os.replace(tmp, self.path)

    # -- idempotency ---------------------------------------------------------------------------

    def idem_begin(self, scope, key, params):
        """None: go ahead (the key is now in flight); (status, body, True): the first answer,
        replayed. ApiError: other parameters (400) or the first request still running (409)."""
        if key is None:
            return None
        if not 1 <= len(key) <= MAX_KEY:
            raise invalid("Idempotency-Key is 1 to %d characters" % MAX_KEY, "Idempotency-Key")
        h = params_hash(params)
        full = scope + " " + key
        with self.lock:
            rec = self.idem.get(full)
            if rec is None:
                self.idem[full] = {"key": full, "hash": h, "state": "in_flight", "created": int(time.time())}
                return None
            if rec["hash"] != h:
                raise ApiError(400, "idempotency_error",
                               "Keys for idempotent requests can only be used with the same parameters "
                               "they were first used with. Try using a key other than '%s' if you meant "
                               "to execute a different request." % key[:MAX_KEY], code="idempotency_key_in_use")
            if rec["state"] == "in_flight":
                raise ApiError(409, "idempotency_error",
                               "There is currently another in-progress request using this Idempotent Key "
                               "(that probably means you submitted twice, and the other request is still "
                               "going through): %s. Please try again later." % key[:MAX_KEY],
                               code="idempotency_key_in_use")
            return rec["status"], copy.deepcopy(rec["body"]), True

    def idem_end(self, scope, key, status, body):
        """Stores the answer (a 500 is not stored: the request may be tried again)."""
        if key is None:
            return
        full = scope + " " + key
        with self.lock:
            if status >= 500:
                self.idem.pop(full, None)
            else:
                self.idem[full].update(state="done", status=status, body=copy.deepcopy(body))
            self.save()

    # -- payment methods -----------------------------------------------------------------------

    @staticmethod
    def method_record(pm, number, exp_month, exp_year, behavior):
        return {"id": pm, "object": "payment_method", "type": "card", "created": int(time.time()),
                "livemode": False, "metadata": {},
                "card": {"brand": brand_of(number), "last4": number[-4:], "exp_month": exp_month,
                         "exp_year": exp_year, "funding": "credit", "country": "US"},
                "_behavior": behavior}

    def create_method(self, p):
        t = p.get("type")
        if t is None:
            raise invalid("Missing required param: type.", "type", "parameter_missing")
        if t != "card":
            raise invalid("Invalid type: must be card", "type")
        card = p.get("card")
        if not isinstance(card, dict):
            raise invalid("Missing required param: card.", "card", "parameter_missing")
        for f in ("number", "exp_month", "exp_year"):
            if card.get(f) in (None, ""):
                raise invalid("Missing required param: card[%s]." % f, "card[%s]" % f, "parameter_missing")
        number = re.sub(r"[ -]", "", str(card["number"]))
        if not re.fullmatch(r"[0-9]{12,19}", number) or not luhn_ok(number):
            raise ApiError(402, "card_error", "Your card number is incorrect.", code="incorrect_number",
                           param="card[number]")
        try:
            month = as_int(card["exp_month"], "card[exp_month]", 1, 12)
        except ApiError:
            raise ApiError(402, "card_error", "Your card's expiration month is invalid.",
                           code="invalid_expiry_month", param="card[exp_month]")
        try:
            year = as_int(card["exp_year"], "card[exp_year]", 0, 9999)
        except ApiError:
            year = -1
        if 0 <= year < 100:
            year += 2000
        now = time.gmtime()
        if year < 0 or year > now.tm_year + 50 or (year, month) < (now.tm_year, now.tm_mon):
            raise ApiError(402, "card_error", "Your card's expiration year is invalid.",
                           code="invalid_expiry_year", param="card[exp_year]")
        cvc = card.get("cvc")
        if cvc is not None and not re.fullmatch(r"[0-9]{3,4}", str(cvc)):
            raise ApiError(402, "card_error", "Your card's security code is invalid.", code="invalid_cvc",
                           param="card[cvc]")
        rec = self.method_record(new_id("pm_"), number, month, year, TEST_CARDS.get(number, "succeed"))
        with self.lock:
            self.methods[rec["id"]] = rec
            self.save()
        self.log("payment method %s (%s %s)" % (rec["id"], rec["card"]["brand"], rec["card"]["last4"]))
        return public(rec)

    def method(self, pm):
        with self.lock:
            m = self.methods.get(pm) if isinstance(pm, str) else None
            if m is None:
                raise ApiError(404, "invalid_request_error", "No such PaymentMethod: '%s'" % str(pm)[:128],
                               code="resource_missing", param="id")
            return copy.deepcopy(m)

    def method_admin(self, pm):
        with self.lock:
            m = self.methods.get(pm)
            if m is None:
                raise ApiError(404, "invalid_request_error", "No such PaymentMethod: '%s'" % pm[:128],
                               code="resource_missing", param="id")
            return admin_view(m)

    def set_behavior(self, pm, behavior):
        behavior = ALIASES.get(behavior, behavior)
        if behavior not in BEHAVIORS:
            raise invalid("behavior is one of %s" % ", ".join(BEHAVIORS), "behavior")
        with self.lock:
            m = self.methods.get(pm)
            if m is None:
                raise ApiError(404, "invalid_request_error", "No such PaymentMethod: '%s'" % pm[:128],
                               code="resource_missing", param="id")
            m["_behavior"] = behavior
            self.save()
            return admin_view(m)

    # -- payment intents -----------------------------------------------------------------------

    @staticmethod
    def intent_params(p):
        """The checked parameters of a create (what idempotency compares)."""
        if p.get("amount") in (None, ""):
            raise invalid("Missing required param: amount.", "amount", "parameter_missing")
        amount = as_int(p["amount"], "amount", 1, MAX_AMOUNT)
        cur = p.get("currency")
        if cur in (None, ""):
            raise invalid("Missing required param: currency.", "currency", "parameter_missing")
        if not isinstance(cur, str) or not re.fullmatch(r"[a-z]{3}", cur):
            raise invalid("Invalid currency: %s. Currencies are three lower-case letters (ISO 4217)."
                          % str(cur)[:16], "currency")
        confirm = as_bool(p.get("confirm", False), "confirm")
        pm = p.get("payment_method")
        if pm is not None and (not isinstance(pm, str) or not ID_RE.fullmatch(pm)):
            raise invalid("Invalid payment_method", "payment_method")
        if confirm and pm is None:
            raise invalid("You must provide a payment_method to confirm this PaymentIntent.",
                          "payment_method", "parameter_missing")
        desc = p.get("description")
        if desc is not None and (not isinstance(desc, str) or len(desc) > 1000):
            raise invalid("description is a string of at most 1000 characters", "description")
        return {"amount": amount, "currency": cur, "confirm": confirm, "payment_method": pm,
                "metadata": metadata_of(p.get("metadata")), "description": desc}

    def create_intent(self, q, key, faults_hit):
        """(status, body, events) for a checked create. The charge (ledger row) is recorded here."""
        now = int(time.time())
        pi = {"id": new_id("pi_"), "object": "payment_intent", "amount": q["amount"], "amount_received": 0,
              "currency": q["currency"], "payment_method": q["payment_method"], "metadata": q["metadata"],
              "description": q["description"], "created": now, "livemode": False,
              "capture_method": "automatic", "confirmation_method": "automatic", "latest_charge": None,
              "last_payment_error": None, "status": "requires_payment_method", "_key": key}
        if q["payment_method"] is not None:
            with self.lock:
                m = self.methods.get(q["payment_method"])
            if m is None:
                raise ApiError(400, "invalid_request_error",
                               "No such PaymentMethod: '%s'" % q["payment_method"], code="resource_missing",
                               param="payment_method")
        if not q["confirm"]:
            pi["status"] = "requires_confirmation"
            with self.lock:
                self.intents[pi["id"]] = pi
                self.save()
            return 200, public(pi), []
        behavior = m["_behavior"]
        settle_ms = self.settle_ms
        if behavior == "succeed" and settle_ms > 0:
            behavior = "processing"
        events = []
        with self.lock:
            if behavior == "succeed":
                self.capture(pi)
                status, body = 200, public(pi)
                events.append("payment_intent.succeeded")
            elif behavior == "processing":
                pi["status"] = "processing"
                pi["_settle_at"] = time.time() + (settle_ms or 500) / 1000.0
                status, body = 200, public(pi)
                events.append("payment_intent.processing")
            else:
                code, decline, message = DECLINES[behavior]
                pi["latest_charge"] = new_id("ch_")
                pi["last_payment_error"] = {"type": "card_error", "code": code, "message": message,
                                            "payment_method": public(m)}
                if decline:
                    pi["last_payment_error"]["decline_code"] = decline
                err = ApiError(402, "card_error", message, code=code, decline_code=decline,
                               extra={"charge": pi["latest_charge"], "payment_intent": public(pi),
                                      "payment_method": public(m)})
                status, body = 402, err.body()
                events.append("payment_intent.payment_failed")
            if faults_hit:
                pi["_faults"] = faults_hit
            self.intents[pi["id"]] = pi
            self.save()
        self.log("intent %s %s %d %s via %s -> %s%s" % (pi["id"], "key " + key if key else "no key",
                                                        q["amount"], q["currency"], q["payment_method"],
                                                        pi["status"], " (%s)" % behavior
                                                        if status == 402 else ""))
        return status, body, [(e, pi["id"]) for e in events]

    def capture(self, pi):  # under self.lock: the one place money is taken
        pi["status"] = "succeeded"
        pi["amount_received"] = pi["amount"]
        pi["latest_charge"] = new_id("ch_")
        pi["last_payment_error"] = None
        pi.pop("_settle_at", None)
        self.ledger.append({"intent_id": pi["id"], "charge_id": pi["latest_charge"],
                            "idempotency_key": pi.get("_key"), "amount": pi["amount"],
                            "currency": pi["currency"], "payment_method": pi["payment_method"],
                            "metadata": pi["metadata"], "created": int(time.time())})

    def settle_due(self):
        """Processing intents whose time came: succeeded (captured) unless the method now declines.
        Returns [(event type, intent id)]."""
        out, now = [], time.time()
        with self.lock:
            for pi in self.intents.values():
                if pi["status"] != "processing" or pi.get("_settle_at", 0) > now:
                    continue
                m = self.methods.get(pi["payment_method"]) or {}
                behavior = m.get("_behavior", "succeed")
                if behavior in DECLINES:
                    code, decline, message = DECLINES[behavior]
                    pi["status"] = "requires_payment_method"
                    pi.pop("_settle_at", None)
                    pi["last_payment_error"] = {"type": "card_error", "code": code, "message": message}
                    if decline:
                        pi["last_payment_error"]["decline_code"] = decline
                    out.append(("payment_intent.payment_failed", pi["id"]))
                else:
                    self.capture(pi)
                    out.append(("payment_intent.succeeded", pi["id"]))
            if out:
                self.save()
        for e, pi in out:
            self.log("intent %s settled: %s" % (pi, e))
        return out

    def intent(self, pid):
        with self.lock:
            pi = self.intents.get(pid)
            if pi is None:
                raise ApiError(404, "invalid_request_error", "No such payment_intent: '%s'" % pid[:128],
                               code="resource_missing", param="intent")
            return public(pi)

    # -- events --------------------------------------------------------------------------------

    def make_event(self, etype, pid, dropped):
        with self.lock:
            ev = {"id": new_id("evt_"), "object": "event", "type": etype, "created": int(time.time()),
                  "livemode": False, "api_version": "2024-06-20",
                  "data": {"object": public(self.intents[pid])}, "_deliveries": [],
                  "_dropped": bool(dropped)}
            self.events.append(ev)
            self.save()
            return copy.deepcopy(ev)

    def event_delivered(self, evt_id, entry):
        with self.lock:
            for ev in reversed(self.events):
                if ev["id"] == evt_id:
                    ev["_deliveries"].append(entry)
                    self.save()
                    return

    # -- admin views ---------------------------------------------------------------------------

    def ledger_rows(self, pm=None, invoice_id=None):
        with self.lock:
            return [copy.deepcopy(r) for r in self.ledger
                    if (not pm or r["payment_method"] == pm)
                    and (not invoice_id or r["metadata"].get("invoice_id") == invoice_id)]

    def intent_rows(self, pm=None, invoice_id=None):
        with self.lock:
            return [admin_view(i) for i in self.intents.values()
                    if (not pm or i["payment_method"] == pm)
                    and (not invoice_id or i["metadata"].get("invoice_id") == invoice_id)]

    def event_rows(self, intent_id=None):
        with self.lock:
            return [admin_view(e) for e in self.events
                    if not intent_id or e["data"]["object"]["id"] == intent_id]

    def processing_ids(self):
        with self.lock:
            return [i["id"] for i in self.intents.values() if i["status"] == "processing"]

    def counts(self):
        with self.lock:
            return {"payment_methods": len(self.methods), "intents": len(self.intents),
                    "charges": len(self.ledger), "events": len(self.events)}

    def reset(self):
        with self.lock:
            self.methods, self.intents, self.idem, self.ledger, self.events = {}, {}, {}, [], []
            for pm, (number, behavior) in PREFAB.items():
                self.methods[pm] = self.method_record(pm, number, 12, 2034, behavior)
            self.save()

    settle_ms = 0


def public(rec):
    """The record as the API shows it: without our private _fields."""
    return {k: copy.deepcopy(v) for k, v in rec.items() if not k.startswith("_")}


def admin_view(rec):
    """The record with the private fields named plainly (behavior, idempotency key, faults...)."""
    return {k.lstrip("_"): copy.deepcopy(v) for k, v in rec.items()}
