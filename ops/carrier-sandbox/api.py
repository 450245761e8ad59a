"""The carrier sandbox's numbers API (Telnyx v2-like): routing and the endpoint handlers.

Each handler takes (store, request) and returns a Response; the HTTP server (server.py) does the
transport, authentication and fault injection around it.
"""

import hashlib
import json
import re
import time
import uuid

import phonenumbers as pn

import porting
from store import now_iso

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
FEATURES = ("voice", "sms", "mms", "fax", "emergency", "hd_voice")
TYPES = ("local", "mobile", "toll_free")
MAX_ORDER_NUMBERS = 100
MAX_LIMIT = 250

SEARCH_FILTERS = {
    "filter[country_code]", "filter[national_destination_code]", "filter[phone_number][contains]",
    "filter[phone_number][starts_with]", "filter[phone_number][ends_with]", "filter[locality]",
    "filter[administrative_area]", "filter[rate_center]", "filter[phone_number_type]",
    "filter[features][]", "filter[features]", "filter[limit]", "filter[best_effort]",
    "filter[quickship]", "filter[reservable]", "filter[exclude_held_numbers]",
}


class Request:
    def __init__(self, method, path, query, headers, body):
        self.method = method
        self.path = path
        self.query = query      # name -> [values] (parse_qs, blank values kept)
        self.headers = headers  # email.message.Message (case-insensitive get)
        self.body = body        # bytes

    def q(self, name, default=None):
        v = self.query.get(name)
        return v[-1] if v else default


class Response:
    def __init__(self, status, body, headers=None):
        self.status = status
        self.body = body
        self.headers = headers or {}


def error(status, code, title, detail, pointer=None, parameter=None):
    e = {"code": str(code), "title": title, "detail": detail,
         "meta": {"url": "https://developers.telnyx.com/docs/overview/errors/%s" % code}}
    if pointer is not None:
        e["source"] = {"pointer": pointer}
    elif parameter is not None:
        e["source"] = {"parameter": parameter}
    return Response(status, {"errors": [e]})


def bad_param(name, detail):
    return error(400, 10015, "Bad Request", detail, parameter=name)


def invalid(pointer, detail, code=10015, title="Invalid value"):
    return error(422, code, title, detail, pointer=pointer)


def not_found(what):
    return error(404, 10005, "Resource not found", "%s could not be found." % what)


def json_body(req):
    """(object, None) or (None, error Response)."""
    if not req.body:
        return None, error(400, 10015, "Bad Request", "The request body is empty; a JSON object is expected.")
    try:
        obj = json.loads(req.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        return None, error(400, 10015, "Bad Request", "The request body is not valid JSON: %s" % e)
    if not isinstance(obj, dict):
        return None, error(400, 10015, "Bad Request", "The request body must be a JSON object.")
    return obj, None


# -- GET /v2/available_phone_numbers ------------------------------------------------------------

def search(store, req):
    for name in req.query:
        if name.startswith("filter") and name not in SEARCH_FILTERS:
            return bad_param(name, "Unknown filter %s; known: %s" % (name, ", ".join(sorted(SEARCH_FILTERS))))
    cc = req.q("filter[country_code]", "US").strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", cc):
        return bad_param("filter[country_code]", "filter[country_code] must be an ISO 3166-1 alpha-2 code.")
    ndc = req.q("filter[national_destination_code]", "").strip()
    if ndc and not ndc.isdigit():
        return bad_param("filter[national_destination_code]", "filter[national_destination_code] must be digits.")
    digit_filters = {}
    for kind in ("contains", "starts_with", "ends_with"):
        name = "filter[phone_number][%s]" % kind
        v = req.q(name, "")
        if v.startswith(" ") and v[1:].strip().isdigit():
            v = "+" + v[1:]  # an unencoded "+" in a query string decodes to a space
        v = v.strip()
        if not v:
            continue
        full = kind == "starts_with" and v.startswith("+")
        if not (v[1:] if full else v).isdigit():
            return bad_param(name, "%s must be digits%s." % (name, " (or +E.164 digits)" if kind == "starts_with" else ""))
        digit_filters[kind] = (v, full)
    locality = req.q("filter[locality]", "").strip().casefold()
    area = req.q("filter[administrative_area]", "").strip().casefold()
    rate_center = req.q("filter[rate_center]", "").strip().casefold()
    typ = req.q("filter[phone_number_type]", "").strip()
    if typ and typ not in TYPES:
        return bad_param("filter[phone_number_type]", "filter[phone_number_type] must be one of %s." % ", ".join(TYPES))
    features = []
    for v in req.query.get("filter[features][]", []) + req.query.get("filter[features]", []):
        features += [f.strip() for f in v.split(",") if f.strip()]
    for f in features:
        if f not in FEATURES:
            return bad_param("filter[features]", "Unknown feature %r; known: %s." % (f, ", ".join(FEATURES)))
    limit = req.q("filter[limit]", "50").strip()
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
        return bad_param("filter[limit]", "filter[limit] must be an integer in 1..%d." % MAX_LIMIT)
    limit = int(limit)
    quickship = req.q("filter[quickship]", "").strip().lower()
    if quickship not in ("", "true", "false"):
        return bad_param("filter[quickship]", "filter[quickship] must be true or false.")

    data = []
    with store.lock:
        now = time.time()
        for r in store.by_country.get(cc, ()):
            if ndc and r.ndc != ndc:
                continue
            if typ and r.type != typ:
                continue
            if digit_filters:
                ok = True
                for kind, (v, full) in digit_filters.items():
                    hay = r.e164 if full else r.nsn
                    if kind == "contains":
                        ok = v in hay
                    elif kind == "starts_with":
                        ok = hay.startswith(v)
                    else:
                        ok = hay.endswith(v)
                    if not ok:
                        break
                if not ok:
                    continue
            if locality and (r.locality or "").casefold() != locality:
                continue
            if area and area not in ((r.region or "").casefold(), (r.region_name or "").casefold()):
                continue
            if rate_center and (r.rate_center or "").casefold() != rate_center:
                continue
            if features and not all(f in r.features for f in features):
                continue
            if quickship == "true" and r.country not in ("US", "CA"):
                continue
            if not store.available(r.e164, now):
                continue
            data.append(r.as_available())
            if len(data) >= limit:
                break
    return Response(200, {"data": data, "meta": {"total_results": len(data), "best_effort_results": 0}})


# -- POST /v2/number_orders, GET /v2/number_orders[/{id}] -----------------------------------------

def _fingerprint(req):
    try:
        canon = json.dumps(json.loads(req.body.decode("utf-8")), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode("utf-8")).hexdigest()
    except (UnicodeDecodeError, ValueError):
        return hashlib.sha256(req.body or b"").hexdigest()


def create_order(store, req):
    key = (req.headers.get("Idempotency-Key") or "").strip()
    if len(key) > 255:
        return error(400, 10015, "Bad Request", "Idempotency-Key is longer than 255 characters.")
    with store.lock:
        if key:
            prev = store.idempotency.get(key)
            if prev and time.time() - prev["at"] <= store.idempotency_ttl_s:
                if prev["fingerprint"] != _fingerprint(req):
                    return error(422, 10015, "Idempotency key reused",
                                 "Idempotency-Key %r was first used with another request body." % key)
                return Response(prev["status"], prev["body"], {"Idempotent-Replayed": "true"})
        resp = _order(store, req)
        if key and resp.status < 500:
            store.idempotency[key] = {"scope": "POST /v2/number_orders", "fingerprint": _fingerprint(req),
                                      "status": resp.status, "body": resp.body, "at": time.time()}
        store.save()
        return resp


def _order(store, req):
    body, err = json_body(req)
    if err:
        return err
    items = body.get("phone_numbers")
    if not isinstance(items, list) or not items:
        return invalid("/phone_numbers", "phone_numbers must be a non-empty array of {\"phone_number\": \"+E.164\"}.",
                       code=10004, title="Missing required parameter")
    if len(items) > MAX_ORDER_NUMBERS:
        return invalid("/phone_numbers", "At most %d phone numbers per order." % MAX_ORDER_NUMBERS)
    for i, it in enumerate(items):
        if not isinstance(it, dict) or not isinstance(it.get("phone_number"), str):
            return invalid("/phone_numbers/%d/phone_number" % i, "Each entry needs a phone_number string.",
                           code=10004, title="Missing required parameter")
    for name in ("customer_reference", "connection_id", "messaging_profile_id", "billing_group_id"):
        v = body.get(name)
        if v is not None and (not isinstance(v, str) or len(v) > 255):
            return invalid("/" + name, "%s must be a string of at most 255 characters." % name)

    now = time.time()
    ts = now_iso(now)
    order_id = str(uuid.uuid4())
    delay = store.order_delay_ms / 1000.0
    results, ok = [], 0
    taken = set()
    for it in items:
        e164 = it["phone_number"].strip()
        res = {"id": None, "record_type": "number_order_phone_number", "phone_number": e164,
               "status": "failure", "errors": []}
        if not E164.match(e164):
            res["errors"].append({"code": "10016", "title": "Phone number must be in +E.164 format",
                                  "detail": "%r is not an E.164 number." % e164})
        elif e164 not in store.by_e164 and e164 not in store.owned:
            res["errors"].append({"code": "10005", "title": "Phone number not found",
                                  "detail": "%s is not in this carrier's inventory." % e164})
        elif e164 in taken or not store.available(e164, now):
            res["errors"].append({"code": "10012", "title": "Phone number not available",
                                  "detail": "%s has already been ordered or is reserved." % e164})
        else:
            inv = store.by_e164[e164]
            nid = str(uuid.uuid4())
            store.numbers[nid] = {
                "id": nid, "record_type": "phone_number", "phone_number": e164,
                "status": "purchase-pending" if delay > 0 else "active",
                "phone_number_type": inv.type, "country_iso_alpha2": inv.country,
                "connection_id": body.get("connection_id"),
                "messaging_profile_id": body.get("messaging_profile_id"),
                "billing_group_id": body.get("billing_group_id"),
                "customer_reference": body.get("customer_reference"),
                "number_order_id": order_id,
                "call_forwarding": {"call_forwarding_enabled": False, "forwards_to": None,
                                    "forwarding_type": "always"},
                "tags": [],
                "monthly_cost": inv.monthly, "upfront_cost": inv.upfront, "currency": "USD",
                "purchased_at": ts, "created_at": ts, "updated_at": ts,
                "_active_at": now + delay,
            }
            store.owned[e164] = nid
            store.quarantine.pop(e164, None)
            taken.add(e164)
            res["id"] = nid
            res["status"] = "success"
            ok += 1
        results.append(res)
    status = "success" if ok == len(items) else "failure" if ok == 0 else "partial_success"
    order = {"id": order_id, "record_type": "number_order", "status": status,
             "phone_numbers_count": len(items), "phone_numbers": results,
             "customer_reference": body.get("customer_reference"),
             "connection_id": body.get("connection_id"),
             "messaging_profile_id": body.get("messaging_profile_id"),
             "billing_group_id": body.get("billing_group_id"),
             "requirements_met": True, "created_at": ts, "updated_at": ts, "_active_at": now + delay}
    store.orders[order_id] = order
    return Response(201, {"data": store.order_view(order, now)})


def get_order(store, req, oid):
    with store.lock:
        o = store.orders.get(oid)
        if not o:
            return not_found("Number order %s" % oid)
        return Response(200, {"data": store.order_view(o)})


def _page(req, items):
    num, size = req.q("page[number]", "1"), req.q("page[size]", "20")
    if not num.isdigit() or int(num) < 1:
        return None, bad_param("page[number]", "page[number] must be an integer >= 1.")
    if not size.isdigit() or not 1 <= int(size) <= MAX_LIMIT:
        return None, bad_param("page[size]", "page[size] must be an integer in 1..%d." % MAX_LIMIT)
    num, size = int(num), int(size)
    total = len(items)
    return (items[(num - 1) * size:num * size],
            {"total_pages": (total + size - 1) // size, "total_results": total,
             "page_number": num, "page_size": size}), None


def list_orders(store, req):
    ref = req.q("filter[customer_reference]")
    status = req.q("filter[status]")
    with store.lock:
        now = time.time()
        items = [store.order_view(o, now) for o in store.orders.values()]
    items = [o for o in items if (ref is None or o["customer_reference"] == ref)
             and (status is None or o["status"] == status)]
    items.sort(key=lambda o: (o["created_at"], o["id"]))
    page, err = _page(req, items)
    if err:
        return err
    return Response(200, {"data": page[0], "meta": page[1]})


# -- /v2/phone_numbers ------------------------------------------------------------------------------

def get_number(store, req, nid):
    with store.lock:
        n = store.numbers.get(nid)
        if not n:
            return not_found("Phone number %s" % nid)
        return Response(200, {"data": store.number_view(n)})


def list_numbers(store, req):
    want = req.q("filter[phone_number]")
    if want is not None:
        # an unencoded "+" in a query string decodes to a space
        want = want.strip()
        if want and not want.startswith("+"):
            want = "+" + want
    status = req.q("filter[status]")
    tag = req.q("filter[tag]")
    ref = req.q("filter[customer_reference]")
    conn = req.q("filter[connection_id]")
    with store.lock:
        now = time.time()
        if want is not None:
            nid = store.owned.get(want)
            items = [store.number_view(store.numbers[nid], now)] if nid else []
        else:
            items = [store.number_view(n, now) for n in store.numbers.values()]
    items = [n for n in items if (status is None or n["status"] == status)
             and (tag is None or tag in n["tags"])
             and (ref is None or n["customer_reference"] == ref)
             and (conn is None or n["connection_id"] == conn)]
    items.sort(key=lambda n: (n["created_at"], n["phone_number"]))
    page, err = _page(req, items)
    if err:
        return err
    return Response(200, {"data": page[0], "meta": page[1]})


def _valid_e164(s):
    if not isinstance(s, str) or not E164.match(s):
        return False
    try:
        return pn.is_possible_number(pn.parse(s, None))
    except pn.NumberParseException:
        return False


PATCHABLE = ("status", "call_forwarding", "connection_id", "tags", "customer_reference",
             "messaging_profile_id", "billing_group_id")


def update_number(store, req, nid):
    body, err = json_body(req)
    if err:
        return err
    unknown = sorted(set(body) - set(PATCHABLE))
    if unknown:
        return invalid("/" + unknown[0], "Unknown or read-only attribute %r; updatable: %s." % (
            unknown[0], ", ".join(PATCHABLE)))
    if "status" in body and body["status"] not in ("active", "disabled"):
        return invalid("/status", "status must be \"active\" or \"disabled\".")
    for name in ("connection_id", "customer_reference", "messaging_profile_id", "billing_group_id"):
        v = body.get(name)
        if v is not None and (not isinstance(v, str) or len(v) > 255):
            return invalid("/" + name, "%s must be a string of at most 255 characters, or null." % name)
    if "tags" in body:
        tags = body["tags"]
        if not isinstance(tags, list) or len(tags) > 50 or not all(
                isinstance(t, str) and 0 < len(t) <= 100 for t in tags):
            return invalid("/tags", "tags must be an array of at most 50 non-empty strings.")
    cf = body.get("call_forwarding")
    if "call_forwarding" in body:
        if not isinstance(cf, dict):
            return invalid("/call_forwarding", "call_forwarding must be an object.")
        bad = sorted(set(cf) - {"call_forwarding_enabled", "forwards_to", "forwarding_type"})
        if bad:
            return invalid("/call_forwarding/" + bad[0], "Unknown attribute %r of call_forwarding." % bad[0])
        if "call_forwarding_enabled" in cf and not isinstance(cf["call_forwarding_enabled"], bool):
            return invalid("/call_forwarding/call_forwarding_enabled", "call_forwarding_enabled must be a boolean.")
        if "forwarding_type" in cf and cf["forwarding_type"] not in ("always", "on_failure"):
            return invalid("/call_forwarding/forwarding_type", "forwarding_type must be \"always\" or \"on_failure\".")
        if cf.get("forwards_to") not in (None, "") and not _valid_e164(cf["forwards_to"]):
            return invalid("/call_forwarding/forwards_to", "forwards_to must be a phone number in +E.164 format.",
                           code=10016, title="Phone number must be in +E.164 format")
    with store.lock:
        n = store.numbers.get(nid)
        if not n:
            return not_found("Phone number %s" % nid)
        if cf is not None:
            merged = dict(n["call_forwarding"])
            merged.update(cf)
            if merged.get("forwards_to") == "":
                merged["forwards_to"] = None
            if merged["call_forwarding_enabled"] and not merged.get("forwards_to"):
                return invalid("/call_forwarding/forwards_to",
                               "forwards_to is required when call_forwarding_enabled is true.",
                               code=10004, title="Missing required parameter")
        now = time.time()
        if "status" in body:
            pending = n["status"] == "purchase-pending" and n.get("_active_at", 0) > now
            if pending:
                return error(422, 10015, "Invalid value", "The number is still purchase-pending.",
                             pointer="/status")
            n["status"] = body["status"]
        if cf is not None:
            n["call_forwarding"] = merged
        for name in ("connection_id", "tags", "customer_reference", "messaging_profile_id", "billing_group_id"):
            if name in body:
                n[name] = list(body[name]) if name == "tags" else body[name]
        n["updated_at"] = now_iso(now)
        store.save()
        return Response(200, {"data": store.number_view(n, now)})


def delete_number(store, req, nid):
    with store.lock:
        n = store.numbers.pop(nid, None)
        if not n:
            return not_found("Phone number %s" % nid)
        now = time.time()
        store.owned.pop(n["phone_number"], None)
        if n["phone_number"] in store.by_e164:
            store.quarantine[n["phone_number"]] = now + store.quarantine_s
        view = store.number_view(n, now)
        view["status"] = "deleted"
        view["updated_at"] = now_iso(now)
        store.save()
        return Response(200, {"data": view})


# -- /v2/phone_numbers/{id}/voice: the number's voice settings, versioned ---------------------------
#
# Telnyx keeps a number's voice settings (call forwarding among them) at /v2/phone_numbers/{id}/voice.
# The sandbox adds what a carrier with conditional updates does: a PATCH carries settings_version (an
# integer >= 1, the sender's version of the settings). A version older than the one the carrier holds
# is refused with 409 (code 10020, meta.current_version: nothing changes); the same version again is a
# replay and answers 200 with what the carrier holds; a newer one replaces the forwarding.

VOICE_PATCHABLE = ("call_forwarding", "settings_version")
_SIP = re.compile(r"^sips?:[^\s@]+@[^\s@]+$|^sips?:[^\s@]+$")


def voice_view(n):
    return {"id": n["id"], "record_type": "voice_settings", "phone_number": n["phone_number"],
            "call_forwarding": dict(n["call_forwarding"]),
            "settings_version": n.get("_settings_version", 0),
            "updated_at": n.get("_settings_updated_at", n["updated_at"])}


def get_voice(store, req, nid):
    with store.lock:
        n = store.numbers.get(nid)
        if not n:
            return not_found("Phone number %s" % nid)
        return Response(200, {"data": voice_view(n)})


def update_voice(store, req, nid):
    body, err = json_body(req)
    if err:
        return err
    unknown = sorted(set(body) - set(VOICE_PATCHABLE))
    if unknown:
        return invalid("/" + unknown[0], "Unknown or read-only attribute %r; updatable: %s." % (
            unknown[0], ", ".join(VOICE_PATCHABLE)))
    ver = body.get("settings_version")
    if isinstance(ver, bool) or not isinstance(ver, int) or not 1 <= ver <= 2147483647:
        return invalid("/settings_version", "settings_version must be an integer >= 1.",
                       code=10004, title="Missing required parameter")
    cf = body.get("call_forwarding")
    if not isinstance(cf, dict):
        return invalid("/call_forwarding", "call_forwarding must be an object.",
                       code=10004, title="Missing required parameter")
    bad = sorted(set(cf) - {"call_forwarding_enabled", "forwards_to", "forwarding_type"})
    if bad:
        return invalid("/call_forwarding/" + bad[0], "Unknown attribute %r of call_forwarding." % bad[0])
    enabled = cf.get("call_forwarding_enabled", False)
    if not isinstance(enabled, bool):
        return invalid("/call_forwarding/call_forwarding_enabled", "call_forwarding_enabled must be a boolean.")
    ftype = cf.get("forwarding_type", "always")
    if ftype not in ("always", "on_failure"):
        return invalid("/call_forwarding/forwarding_type", "forwarding_type must be \"always\" or \"on_failure\".")
    to = cf.get("forwards_to")
    if to in ("",):
        to = None
    if to is not None and not _valid_e164(to) and not (isinstance(to, str) and len(to) <= 255
                                                       and _SIP.match(to)):
        return invalid("/call_forwarding/forwards_to",
                       "forwards_to must be a phone number in +E.164 format or a sip: URI.",
                       code=10016, title="Phone number must be in +E.164 format")
    if enabled and to is None:
        return invalid("/call_forwarding/forwards_to",
                       "forwards_to is required when call_forwarding_enabled is true.",
                       code=10004, title="Missing required parameter")
    with store.lock:
        n = store.numbers.get(nid)
        if not n:
            return not_found("Phone number %s" % nid)
        held = n.get("_settings_version", 0)
        if ver < held:
            r = error(409, 10020, "Stale settings version",
                      "settings_version %d is older than the version %d this number has." % (ver, held),
                      pointer="/settings_version")
            r.body["errors"][0]["meta"]["current_version"] = held
            return r
        if ver > held:
            now = time.time()
            n["call_forwarding"] = {"call_forwarding_enabled": enabled, "forwards_to": to,
                                    "forwarding_type": ftype}
            n["_settings_version"] = ver
            n["_settings_updated_at"] = now_iso(now)
            n["updated_at"] = now_iso(now)
            store.save()
        return Response(200, {"data": voice_view(n)})


# -- routing --------------------------------------------------------------------------------------

_NUMBER = re.compile(r"^/v2/phone_numbers/([^/]+)$")
_VOICE = re.compile(r"^/v2/phone_numbers/([^/]+)/voice$")
_ORDER = re.compile(r"^/v2/number_orders/([^/]+)$")


def route(method, path):
    """(fault endpoint name, handler(store, req)) or (None, Response) for 404/405."""
    found = porting.route(method, path)
    if found is not None:
        return found
    if path == "/v2/available_phone_numbers":
        if method == "GET":
            return "search", search
        return None, _not_allowed("GET")
    if path == "/v2/number_orders":
        if method == "POST":
            return "order", create_order
        if method == "GET":
            return "get", list_orders
        return None, _not_allowed("GET, POST")
    m = _ORDER.match(path)
    if m:
        if method == "GET":
            return "get", lambda s, r: get_order(s, r, m.group(1))
        return None, _not_allowed("GET")
    if path == "/v2/phone_numbers":
        if method == "GET":
            return "get", list_numbers
        return None, _not_allowed("GET")
    m = _VOICE.match(path)
    if m:
        nid = m.group(1)
        if method == "GET":
            return "get", lambda s, r: get_voice(s, r, nid)
        if method == "PATCH":
            return "voice", lambda s, r: update_voice(s, r, nid)
        return None, _not_allowed("GET, PATCH")
    m = _NUMBER.match(path)
    if m:
        nid = m.group(1)
        if method == "GET":
            return "get", lambda s, r: get_number(s, r, nid)
        if method == "PATCH":
            return "configure", lambda s, r: update_number(s, r, nid)
        if method == "DELETE":
            return "release", lambda s, r: delete_number(s, r, nid)
        return None, _not_allowed("GET, PATCH, DELETE")
    return None, error(404, 10005, "Resource not found", "No route %s %s." % (method, path))


def _not_allowed(allow):
    r = error(405, 10015, "Method not allowed", "Allowed: %s." % allow)
    r.headers["Allow"] = allow
    return r
