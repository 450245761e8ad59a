"""Porting at the carrier sandbox: the losing carriers of a port-in (docs/CARRIER_SANDBOX.md "Porting").

Portability checks and porting orders (Telnyx v2-like), deterministic rules by the number's last digit,
a step engine that moves each order (submitted -> in-process -> exception | foc-date-confirmed ->
ported at the time-compressed FOC; cancel-pending -> cancelled), and signed webhooks delivered per order
in order, retried until a 2xx. Everything lives in the store (store.port_orders, store.port_settings)
under store.lock and is saved after every change, so a restart resumes pending steps and deliveries.

The account number and the PIN are never stored, logged or answered: at create/PATCH time the rules that
need them are evaluated and only the outcome (and the last two characters) is kept.
"""

import datetime
import hashlib
import http.client
import json
import random
import threading
import time
import uuid
from urllib.parse import urlsplit

import phonenumbers as pn

import api
from signing import sign
from store import now_iso

MAX_CHECK = 250
MAX_ORDER = 1000
MAX_TEXT = 255
MAX_PIN = 16
MAX_ACCOUNT = 64
FINAL = ("ported", "cancelled")
CANCELLABLE = ("submitted", "in-process", "exception", "foc-date-confirmed")
LOCATION_KEYS = ("street_address", "extended_address", "locality", "administrative_area", "postal_code",
                 "country_code")
ADMIN_KEYS = ("entity_name", "authorized_person_name", "account_number", "pin_passcode")
EVENT_TYPE = "porting_order.status_changed"
WEBHOOK_TIMEOUT_S = 5.0
BACKOFF_FIRST_S, BACKOFF_MAX_S = 0.2, 30.0

ACME = {"name": "Acme Wireless", "spid": "1111", "pin_required": True, "fast_portable": False}
BETA = {"name": "Beta Telecom", "spid": "2222", "pin_required": False, "fast_portable": True}

EXCEPTIONS = {
    "wrong_pin": ("end_user.pin", "The PIN does not match the losing carrier's records."),
    "wrong_account_number": ("end_user.account_number",
                             "The account number does not match the losing carrier's records."),
    "name_mismatch": ("end_user.authorized_name",
                      "The authorized person's name does not match the losing carrier's records."),
}

SETTINGS_DEFAULTS = {"webhook_url": None, "api_key": None, "signing_secret": None, "time_scale": 8640.0,
                     "step_ms": 200}

_TYPES = {pn.PhoneNumberType.MOBILE: "mobile", pn.PhoneNumberType.TOLL_FREE: "toll_free"}


def perr(status, code, title, detail, pointer=None):
    """A Telnyx-style error with a symbolic code (porting's own refusals)."""
    r = api.error(status, 10015, title, detail, pointer=pointer)
    r.body["errors"][0]["code"] = code
    r.body["errors"][0]["meta"]["url"] = "https://developers.telnyx.com/docs/porting/errors#%s" % code
    return r


# -- settings ---------------------------------------------------------------------------------------

def check_settings(cfg, partial=True):
    """Checks a POST /admin/porting body (or the env's values); returns the normalized dict or raises
    ValueError naming the field."""
    if not isinstance(cfg, dict):
        raise ValueError("expected a JSON object")
    unknown = sorted(set(cfg) - set(SETTINGS_DEFAULTS))
    if unknown:
        raise ValueError("unknown field(s): %s; known: %s" % (", ".join(unknown), ", ".join(SETTINGS_DEFAULTS)))
    out = {}
    if "webhook_url" in cfg:
        url = cfg["webhook_url"]
        if url is not None:
            u = urlsplit(url) if isinstance(url, str) else None
            if u is None or u.scheme not in ("http", "https") or not u.hostname or len(url) > 2048:
                raise ValueError("webhook_url must be an http(s) URL or null")
        out["webhook_url"] = url
    for k in ("api_key", "signing_secret"):
        if k in cfg:
            v = cfg[k]
            if v is not None and (not isinstance(v, str) or not 1 <= len(v) <= 512 or any(
                    c in v for c in "\r\n")):
                raise ValueError("%s must be a string of 1..512 characters (one line) or null" % k)
            out[k] = v
    if "time_scale" in cfg:
        v = cfg["time_scale"]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 1 <= v <= 1e9:
            raise ValueError("time_scale must be a number in 1..1000000000")
        out["time_scale"] = float(v)
    if "step_ms" in cfg:
        v = cfg["step_ms"]
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 600000:
            raise ValueError("step_ms must be an integer in 0..600000")
        out["step_ms"] = v
    return out


# -- the rules --------------------------------------------------------------------------------------

def losing_carrier(e164):
    return None if e164[-1] == "9" else ACME if e164[-1] in "01234" else BETA


def check_number(store, e164):
    """The portability check's item for one number (call with store.lock held)."""
    res = {"record_type": "portability_check_result", "phone_number": e164, "portable": False,
           "fast_portable": False, "not_portable_reason": None, "losing_carrier": None,
           "phone_number_type": None,
           "requirements": {"pin_required": False, "account_number_required": False}}
    parsed = None
    if isinstance(e164, str) and api.E164.match(e164):
        try:
            parsed = pn.parse(e164, None)
        except pn.NumberParseException:
            parsed = None
    if parsed is None or not pn.is_valid_number(parsed):
        res["not_portable_reason"] = "invalid_number"
        return res
    res["phone_number_type"] = _TYPES.get(pn.number_type(parsed), "local")
    if e164 in store.by_e164 or e164 in store.owned:
        res["not_portable_reason"] = "already_on_platform"
        return res
    if parsed.country_code != 1:
        res["not_portable_reason"] = "country_not_supported"
        return res
    carrier = losing_carrier(e164)
    if carrier is None:
        res["not_portable_reason"] = "carrier_not_supported"
        return res
    res.update(portable=True, fast_portable=carrier["fast_portable"],
               losing_carrier={"name": carrier["name"], "spid": carrier["spid"]},
               requirements={"pin_required": carrier["pin_required"], "account_number_required": True})
    return res


def _verdicts(order, admin):
    """Updates order["_checks"] from the admin members sent (the secrets are looked at here only)."""
    checks = order.setdefault("_checks", {"pin": False, "account": False, "name": True})
    if "pin_passcode" in admin:
        pin = admin["pin_passcode"]
        if not order["_pin_required"]:
            checks["pin"] = True
        else:
            checks["pin"] = pin is not None and all(pin == p["phone_number"][-4:] for p in order["phone_numbers"])
    elif not order["_pin_required"]:
        checks["pin"] = True
    if "account_number" in admin:
        acct = admin["account_number"]
        checks["account"] = acct is not None and not acct.startswith("000")
    if "authorized_person_name" in admin:
        checks["name"] = "mismatch" not in (admin["authorized_person_name"] or "").casefold()


def _exceptions(order):
    c = order["_checks"]
    out = []
    for code, ok in (("wrong_pin", c["pin"]), ("wrong_account_number", c["account"]),
                     ("name_mismatch", c["name"])):
        if not ok:
            field, message = EXCEPTIONS[code]
            out.append({"code": code, "field": field, "message": message})
    return out


# -- request bodies -----------------------------------------------------------------------------------

def _text(v, limit=MAX_TEXT):
    return v is None or (isinstance(v, str) and 1 <= len(v) <= limit)


def _foc_date(v):
    """The date of foc_datetime_requested ("YYYY-MM-DD" or an ISO date-time), or None."""
    if not isinstance(v, str) or len(v) < 10 or len(v) > 64:
        return None
    try:
        d = datetime.date.fromisoformat(v[:10])
    except ValueError:
        return None
    if len(v) > 10:
        try:
            datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            return None
    return d.isoformat()


def _details(body, creating):
    """Checks end_user / activation_settings / documents; returns (parsed dict, None) or (None, error)."""
    out = {"admin": {}, "location": {}, "documents": {}, "foc": None}
    eu = body.get("end_user")
    if eu is not None:
        if not isinstance(eu, dict) or set(eu) - {"admin", "location"}:
            return None, api.invalid("/end_user", "end_user must be an object with admin and location.")
        admin = eu.get("admin") or {}
        if not isinstance(admin, dict) or set(admin) - set(ADMIN_KEYS):
            return None, api.invalid("/end_user/admin", "end_user.admin takes %s." % ", ".join(ADMIN_KEYS))
        limits = {"account_number": MAX_ACCOUNT, "pin_passcode": MAX_PIN}
        for k, v in admin.items():
            if not _text(v, limits.get(k, MAX_TEXT)) or (k in limits and v is not None and not all(
                    " " <= c <= "~" for c in v)):
                return None, api.invalid("/end_user/admin/" + k, "%s must be a string of 1..%d %scharacters." % (
                    k, limits.get(k, MAX_TEXT), "printable ASCII " if k in limits else ""))
        out["admin"] = admin
        loc = eu.get("location") or {}
        if not isinstance(loc, dict) or set(loc) - set(LOCATION_KEYS):
            return None, api.invalid("/end_user/location",
                                     "end_user.location takes %s." % ", ".join(LOCATION_KEYS))
        for k, v in loc.items():
            if not _text(v):
                return None, api.invalid("/end_user/location/" + k, "%s must be a string of 1..255 characters." % k)
        out["location"] = loc
    act = body.get("activation_settings")
    if act is not None:
        if not isinstance(act, dict) or set(act) - {"foc_datetime_requested"}:
            return None, api.invalid("/activation_settings", "activation_settings takes foc_datetime_requested.")
        if "foc_datetime_requested" in act:
            out["foc"] = _foc_date(act["foc_datetime_requested"])
            if out["foc"] is None:
                return None, api.invalid("/activation_settings/foc_datetime_requested",
                                         "foc_datetime_requested must be an ISO 8601 date or date-time.")
    if creating and out["foc"] is None:
        return None, api.invalid("/activation_settings/foc_datetime_requested",
                                 "foc_datetime_requested is required.", code=10004,
                                 title="Missing required parameter")
    docs = body.get("documents")
    if docs is not None:
        if not isinstance(docs, dict) or set(docs) - {"loa", "invoice"}:
            return None, api.invalid("/documents", "documents takes loa and invoice.")
        for k, v in docs.items():
            if not _text(v):
                return None, api.invalid("/documents/" + k, "%s must be a document id string." % k)
        out["documents"] = docs
    return out, None


def _apply_details(order, d):
    """Writes parsed details into the order: clear values kept only for what is not secret."""
    admin = order["end_user"]["admin"]
    for k, v in d["admin"].items():
        if k == "account_number":
            admin["account_number_last2"] = v[-2:] if v else None
        elif k == "pin_passcode":
            admin["pin_last2"] = v[-2:] if v else None
        elif v is None:
            admin.pop(k, None)
        else:
            admin[k] = v
    for k, v in d["location"].items():
        if v is None:
            order["end_user"]["location"].pop(k, None)
        else:
            order["end_user"]["location"][k] = v
    for k, v in d["documents"].items():
        order["documents"][k] = v
    if d["foc"] is not None:
        order["_foc"] = d["foc"]
        order["activation_settings"]["foc_datetime_requested"] = d["foc"] + "T14:00:00Z"
    _verdicts(order, d["admin"])


def _numbers(body):
    """(list of E.164 strings, None) or (None, error): strings or {"phone_number": ...} objects."""
    items = body.get("phone_numbers")
    if not isinstance(items, list) or not items:
        return None, api.invalid("/phone_numbers", "phone_numbers must be a non-empty array.", code=10004,
                                 title="Missing required parameter")
    out = []
    for i, it in enumerate(items):
        if isinstance(it, dict):
            it = it.get("phone_number")
        if not isinstance(it, str):
            return None, api.invalid("/phone_numbers/%d" % i, "Each entry must be a phone number string.")
        out.append(it.strip())
    return out, None


# -- views ----------------------------------------------------------------------------------------------

def view(o):
    out = {k: v for k, v in o.items() if not k.startswith("_")}
    out["status"] = {"value": o["status"], "details": []}
    out["phone_numbers"] = [dict(p) for p in o["phone_numbers"]]
    out["end_user"] = json.loads(json.dumps(o["end_user"]))
    out["activation_settings"] = dict(o["activation_settings"])
    out["documents"] = dict(o["documents"])
    out["exceptions"] = [dict(e) for e in o["exceptions"]]
    return out


def admin_view(o):
    out = view(o)
    out["events_pending"] = len(o["_outbox"])
    out["events_delivered"] = o["_delivered"]
    out["delivery_failures"] = o["_failures"]
    out["next_step"] = o["_next"]["to"] if o["_next"] else None
    out["next_step_at"] = now_iso(o["_next"]["at"]) if o["_next"] else None
    return out


# -- the handlers (store, req) -> Response ----------------------------------------------------------------

def checks(store, req):
    body, err = api.json_body(req)
    if err:
        return err
    items = body.get("phone_numbers")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_CHECK:
        return api.invalid("/phone_numbers", "phone_numbers must be an array of 1..%d numbers." % MAX_CHECK,
                           code=10004, title="Missing required parameter")
    for i, it in enumerate(items):
        if not isinstance(it, str) or len(it) > 64:
            return api.invalid("/phone_numbers/%d" % i, "Each entry must be a phone number string.")
    with store.lock:
        data = [check_number(store, e164.strip()) for e164 in items]
    return api.Response(200, {"data": data})


def _fingerprint(req):
    try:
        canon = json.dumps(json.loads(req.body.decode("utf-8")), sort_keys=True, separators=(",", ":"))
    except (UnicodeDecodeError, ValueError):
        canon = repr(req.body)
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()


def _idempotent(store, req, scope, work):
    """Runs work() once per Idempotency-Key (scoped); a repeat answers the first answer."""
    key = (req.headers.get("Idempotency-Key") or "").strip()
    if len(key) > 255:
        return api.error(400, 10015, "Bad Request", "Idempotency-Key is longer than 255 characters.")
    with store.lock:
        skey = "%s %s" % (scope, key)
        if key:
            prev = store.idempotency.get(skey)
            if prev and time.time() - prev["at"] <= store.idempotency_ttl_s:
                if prev["fingerprint"] != _fingerprint(req):
                    return api.error(422, 10015, "Idempotency key reused",
                                     "Idempotency-Key %r was first used with another request body." % key)
                return api.Response(prev["status"], prev["body"], {"Idempotent-Replayed": "true"})
        resp = work()
        if key and resp.status < 500 and resp.status != 409:
            store.idempotency[skey] = {"scope": scope, "fingerprint": _fingerprint(req),
                                       "status": resp.status, "body": resp.body, "at": time.time()}
        store.save()
        return resp


def create(store, req):
    return _idempotent(store, req, "POST /v2/porting_orders", lambda: _create(store, req))


def _open_port(store, e164, but=None):
    for o in store.port_orders.values():
        if o["id"] != but and o["status"] not in FINAL and any(p["phone_number"] == e164
                                                                for p in o["phone_numbers"]):
            return o["id"]
    return None


def _create(store, req):
    body, err = api.json_body(req)
    if err:
        return err
    unknown = sorted(set(body) - {"phone_numbers", "customer_reference", "end_user", "activation_settings",
                                  "documents"})
    if unknown:
        return api.invalid("/" + unknown[0], "Unknown attribute %r." % unknown[0])
    numbers, err = _numbers(body)
    if err:
        return err
    if len(numbers) > MAX_ORDER:
        return api.invalid("/phone_numbers", "At most %d phone numbers per porting order." % MAX_ORDER)
    ref = body.get("customer_reference")
    if not _text(ref):
        return api.invalid("/customer_reference", "customer_reference must be a string of 1..255 characters.")
    details, err = _details(body, creating=True)
    if err:
        return err
    seen, carriers = set(), set()
    for i, e164 in enumerate(numbers):
        if e164 in seen:
            return perr(422, "duplicate_number", "Duplicate phone number",
                        "%s is in the order twice." % e164, "/phone_numbers/%d" % i)
        seen.add(e164)
        res = check_number(store, e164)
        if not res["portable"]:
            return perr(422, "number_not_portable", "Phone number not portable",
                        "%s is not portable: %s." % (e164, res["not_portable_reason"]), "/phone_numbers/%d" % i)
        carriers.add(res["losing_carrier"]["name"])
        other = _open_port(store, e164)
        if other:
            return perr(422, "number_in_open_port", "Phone number in another porting order",
                        "%s is already in the open porting order %s." % (e164, other), "/phone_numbers/%d" % i)
    if len(carriers) > 1:
        return perr(422, "mixed_losing_carriers", "Numbers of several losing carriers",
                    "The numbers belong to %s: one porting order per losing carrier." % " and ".join(
                        sorted(carriers)), "/phone_numbers")
    carrier = losing_carrier(numbers[0])
    now = time.time()
    ts = now_iso(now)
    oid = str(uuid.uuid4())
    order = {
        "id": oid, "record_type": "porting_order", "status": "submitted", "customer_reference": ref,
        "losing_carrier": {"name": carrier["name"], "spid": carrier["spid"]},
        "phone_numbers": [{"phone_number": e, "status": "submitted", "id": None} for e in numbers],
        "end_user": {"admin": {"account_number_last2": None, "pin_last2": None}, "location": {}},
        "activation_settings": {"foc_datetime_requested": None, "foc_datetime_actual": None},
        "documents": {}, "exceptions": [], "created_at": ts, "updated_at": ts,
        "_pin_required": carrier["pin_required"], "_foc": None,
        "_checks": {"pin": not carrier["pin_required"], "account": False, "name": True},
        "_next": None, "_outbox": [], "_delivered": 0, "_failures": 0, "_attempt": 0, "_retry_at": 0,
    }
    _apply_details(order, details)
    _schedule(store, order, "in-process", now)
    store.port_orders[oid] = order
    store.port_wake()
    return api.Response(201, {"data": view(order)})


def update(store, req, oid):
    return _idempotent(store, req, "PATCH /v2/porting_orders/%s" % oid, lambda: _update(store, req, oid))


def _update(store, req, oid):
    o = store.port_orders.get(oid)
    if not o:
        return api.not_found("Porting order %s" % oid)
    body, err = api.json_body(req)
    if err:
        return err
    unknown = sorted(set(body) - {"phone_numbers", "customer_reference", "end_user", "activation_settings",
                                  "documents"})
    if unknown:
        return api.invalid("/" + unknown[0], "Unknown attribute %r." % unknown[0])
    if "phone_numbers" in body:
        numbers, err = _numbers(body)
        if err:
            return err
        if sorted(numbers) != sorted(p["phone_number"] for p in o["phone_numbers"]):
            return api.invalid("/phone_numbers", "The numbers of a porting order cannot change.")
    if "customer_reference" in body and body["customer_reference"] != o["customer_reference"]:
        return api.invalid("/customer_reference", "customer_reference cannot change.")
    details, err = _details(body, creating=False)
    if err:
        return err
    if o["status"] != "exception":
        return perr(409, "invalid_state", "Invalid state",
                    "Porting order %s is %s: only an order in exception can be updated." % (oid, o["status"]))
    now = time.time()
    _apply_details(o, details)
    o["exceptions"] = []
    _set_status(o, "submitted", now)
    _schedule(store, o, "in-process", now)
    store.port_wake()
    return api.Response(200, {"data": view(o)})


def cancel(store, req, oid):
    with store.lock:
        o = store.port_orders.get(oid)
        if not o:
            return api.not_found("Porting order %s" % oid)
        if o["status"] == "ported":
            return perr(409, "invalid_state", "Invalid state", "Porting order %s is ported: too late to cancel." % oid)
        if o["status"] in CANCELLABLE:
            now = time.time()
            _set_status(o, "cancel-pending", now)
            _schedule(store, o, "cancelled", now)
            store.save()
            store.port_wake()
        return api.Response(200, {"data": view(o)})


def get(store, req, oid):
    with store.lock:
        o = store.port_orders.get(oid)
        if not o:
            return api.not_found("Porting order %s" % oid)
        return api.Response(200, {"data": view(o)})


def list_orders(store, req):
    ref, status = req.q("filter[customer_reference]"), req.q("filter[status]")
    with store.lock:
        items = [view(o) for o in store.port_orders.values()
                 if (ref is None or o["customer_reference"] == ref) and (status is None or o["status"] == status)]
    items.sort(key=lambda o: (o["created_at"], o["id"]))
    page, err = api._page(req, items)
    if err:
        return err
    return api.Response(200, {"data": page[0], "meta": page[1]})


# -- steps ----------------------------------------------------------------------------------------------

def _set_status(o, status, now):
    o["status"] = status
    for p in o["phone_numbers"]:
        p["status"] = status
    o["updated_at"] = now_iso(now)


def _schedule(store, o, to, now, delay_s=None):
    step = store.port_setting("step_ms") / 1000.0
    o["_next"] = {"to": to, "at": now + (step if delay_s is None else max(step, delay_s))}


def _emit(o, now):
    o["_outbox"].append({"id": str(uuid.uuid4()), "occurred_at": now_iso(now), "payload": {
        "id": o["id"], "customer_reference": o["customer_reference"], "status": o["status"],
        "foc_date": o["activation_settings"]["foc_datetime_actual"],
        "exceptions": [dict(e) for e in o["exceptions"]],
        "phone_numbers": [dict(p) for p in o["phone_numbers"]]}})


def _port_numbers(store, o, now):
    ts = now_iso(now)
    for p in o["phone_numbers"]:
        e164 = p["phone_number"]
        nid = store.owned.get(e164)
        if nid is None:
            nid = str(uuid.uuid4())
            try:
                parsed = pn.parse(e164, None)
                typ = _TYPES.get(pn.number_type(parsed), "local")
                region = pn.region_code_for_number(parsed) or "US"
            except pn.NumberParseException:
                typ, region = "local", "US"
            store.numbers[nid] = {
                "id": nid, "record_type": "phone_number", "phone_number": e164, "status": "active",
                "phone_number_type": typ, "country_iso_alpha2": region, "connection_id": None,
                "messaging_profile_id": None, "billing_group_id": None,
                "customer_reference": o["customer_reference"], "number_order_id": None,
                "porting_order_id": o["id"],
                "call_forwarding": {"call_forwarding_enabled": False, "forwards_to": None,
                                    "forwarding_type": "always"},
                "tags": [], "monthly_cost": "1.00", "upfront_cost": "0.00", "currency": "USD",
                "purchased_at": ts, "created_at": ts, "updated_at": ts, "_active_at": now,
            }
            store.owned[e164] = nid
            store.quarantine.pop(e164, None)
        p["id"] = nid


def advance(store, o, now):
    """Runs the order's due step (store.lock held)."""
    to = o["_next"]["to"]
    o["_next"] = None
    if to == "in-process":
        _set_status(o, "in-process", now)
        _schedule(store, o, "verdict", now)
    elif to == "verdict":
        exc = _exceptions(o)
        if exc:
            o["exceptions"] = exc
            _set_status(o, "exception", now)
        else:
            foc = o["_foc"] + "T14:00:00Z"
            o["activation_settings"]["foc_datetime_actual"] = foc
            _set_status(o, "foc-date-confirmed", now)
            foc_epoch = datetime.datetime.fromisoformat(o["_foc"] + "T14:00:00+00:00").timestamp()
            _schedule(store, o, "ported", now, max(0.0, foc_epoch - now) / store.port_setting("time_scale"))
    elif to == "ported":
        _set_status(o, "ported", now)
        _port_numbers(store, o, now)
    elif to == "cancelled":
        _set_status(o, "cancelled", now)
    _emit(o, now)


# -- the engine: steps and webhook deliveries ---------------------------------------------------------------

class Engine:
    def __init__(self, store, log):
        self.store = store
        self.log = log
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.inflight = set()
        self.thread = None
        self.waiting_logged = False
        store.port_wake = self.wake.set

    def start(self):
        self.thread = threading.Thread(target=self._run, name="porting", daemon=True)
        self.thread.start()

    def stop(self):
        self.stopping.set()
        self.wake.set()
        if self.thread is not None:
            self.thread.join(5)

    def _run(self):
        while not self.stopping.is_set():
            try:
                wait = self._tick()
            except Exception as e:  # a bug here must show, not kill the engine
                self.log("porting: ERROR in the step engine: %r" % (e,))
                wait = 1.0
            self.wake.wait(max(0.005, min(wait, 1.0)))
            self.wake.clear()

    def _tick(self):
        st = self.store
        deliver = []
        with st.lock:
            now = time.time()
            changed = False
            nxt = now + 1.0
            for o in list(st.port_orders.values()):
                if o["_next"] and o["_next"]["at"] <= now:
                    advance(st, o, now)
                    changed = True
                if o["_next"]:
                    nxt = min(nxt, o["_next"]["at"])
            if changed:
                st.save()
            url = st.port_setting("webhook_url")
            pending = [o for o in st.port_orders.values() if o["_outbox"]]
            if pending and not url:
                if not self.waiting_logged:
                    self.log("porting: %d order(s) have events waiting: no webhook_url set (POST /admin/porting)"
                             % len(pending))
                    self.waiting_logged = True
            elif url:
                self.waiting_logged = False
                for o in pending:
                    if o["id"] in self.inflight:
                        continue
                    if o["_retry_at"] > now:
                        nxt = min(nxt, o["_retry_at"])
                        continue
                    self.inflight.add(o["id"])
                    deliver.append(o["id"])
        for oid in deliver:
            threading.Thread(target=self._deliver, args=(oid,), name="porting-webhook", daemon=True).start()
        return nxt - time.time()

    def _deliver(self, oid):
        st = self.store
        try:
            with st.lock:
                o = st.port_orders.get(oid)
                if not o or not o["_outbox"]:
                    return
                ev = o["_outbox"][0]
                attempt = o["_attempt"] + 1
                url, key, secret = (st.port_setting("webhook_url"), st.port_setting("api_key"),
                                    st.port_setting("signing_secret"))
            body = json.dumps({"data": {"id": ev["id"], "event_type": EVENT_TYPE, "occurred_at": ev["occurred_at"],
                                        "payload": ev["payload"]}}, separators=(",", ":")).encode("utf-8")
            status, problem = self._post(url, key, secret, body)
            with st.lock:
                if st.port_orders.get(oid) is not o or not o["_outbox"] or o["_outbox"][0]["id"] != ev["id"]:
                    return  # reset meanwhile
                now = time.time()
                if status is not None and 200 <= status < 300:
                    o["_outbox"].pop(0)
                    o["_delivered"] += 1
                    o["_attempt"] = 0
                    o["_retry_at"] = 0
                    if attempt > 1:
                        self.log("porting: event %s (order %s, %s) delivered on attempt %d" % (
                            ev["id"], oid, ev["payload"]["status"], attempt))
                else:
                    delay = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** min(attempt - 1, 20))
                    delay *= 0.5 + random.random() / 2
                    o["_failures"] += 1
                    o["_attempt"] = attempt
                    o["_retry_at"] = now + delay
                    self.log("porting: webhook for event %s (order %s, %s) to %s failed, attempt %d: %s; "
                             "retry in %.1f s" % (ev["id"], oid, ev["payload"]["status"], url, attempt, problem,
                                                  delay))
                st.save()
        finally:
            with st.lock:
                self.inflight.discard(oid)
            self.wake.set()

    @staticmethod
    def _post(url, key, secret, body):
        """(HTTP status or None, problem text) for one signed attempt."""
        u = urlsplit(url)
        cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
        path = (u.path or "/") + ("?" + u.query if u.query else "")
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = "Bearer " + key
        if secret:
            headers["Vox-Signature"] = sign(secret, int(time.time()), body)
        conn = cls(u.hostname, u.port, timeout=WEBHOOK_TIMEOUT_S)
        try:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            raw = resp.read(2048)
            return resp.status, "HTTP %d %s" % (resp.status, raw[:200].decode("utf-8", "replace").strip())
        except (OSError, http.client.HTTPException) as e:
            return None, "unreachable: %s" % (e,)
        finally:
            conn.close()


# -- admin -----------------------------------------------------------------------------------------------

def admin_settings(store):
    with store.lock:
        s = {k: store.port_setting(k) for k in SETTINGS_DEFAULTS}
        out = {"webhook_url": s["webhook_url"], "api_key_set": bool(s["api_key"]),
               "signing_secret_set": bool(s["signing_secret"]), "time_scale": s["time_scale"],
               "step_ms": s["step_ms"], "orders": len(store.port_orders),
               "pending_events": sum(len(o["_outbox"]) for o in store.port_orders.values())}
    return out


def admin_set(store, cfg):
    """Raises ValueError for a bad body; applies and saves otherwise."""
    vals = check_settings(cfg)
    with store.lock:
        store.port_settings.update(vals)
        store.save()
        store.port_wake()


def admin_orders(store, ref=None):
    with store.lock:
        items = [admin_view(o) for o in store.port_orders.values() if ref is None or o["customer_reference"] == ref]
    items.sort(key=lambda o: (o["created_at"], o["id"]))
    return {"data": items, "meta": {"total_results": len(items)}}


# -- routing ---------------------------------------------------------------------------------------------

def route(method, path):
    """(fault endpoint, handler) / (None, Response) like api.route, or None when not a porting path."""
    if path == "/v2/portability_checks":
        return ("portability", checks) if method == "POST" else (None, api._not_allowed("POST"))
    if path == "/v2/porting_orders":
        if method == "POST":
            return "port_create", create
        if method == "GET":
            return "port_get", list_orders
        return None, api._not_allowed("GET, POST")
    if not path.startswith("/v2/porting_orders/"):
        return None
    rest = path[len("/v2/porting_orders/"):].split("/")
    oid = rest[0]
    if not oid:
        return None, api.not_found("Porting order")
    if len(rest) == 1:
        if method == "GET":
            return "port_get", lambda s, r: get(s, r, oid)
        if method == "PATCH":
            return "port_update", lambda s, r: update(s, r, oid)
        return None, api._not_allowed("GET, PATCH")
    if rest[1:] == ["actions", "cancel"]:
        if method == "POST":
            return "port_cancel", lambda s, r: cancel(s, r, oid)
        return None, api._not_allowed("POST")
    return None, api.error(404, 10005, "Resource not found", "No route %s %s." % (method, path))
