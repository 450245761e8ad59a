"""Schemathesis hooks for tests/shell/contract.sh (the API contract run).

They do what a well-behaved client does and what JSON Schema cannot say,
and nothing that hides a disagreement between schemas/openapi.yaml and the
ingress:

- `format: e164` / `format: phone` (a number valid in its country's
  numbering plan): generated from numbers libphonenumber accepts;
- a fresh `Idempotency-Key` for every request that sends a well-formed one
  (a client never reuses a key for another request; a malformed key is
  sent as generated, so its 400 is still checked);
- POST /v1/carrier/cdrs and /v1/carrier/calls/route: the carrier key
  instead of the account key and a
  valid `Vox-Signature` over the exact body sent, when the generated
  signature is well-formed (a malformed or missing one goes as generated
  and must get 401); NDJSON bodies sent as text;
- POST /v1/providers/sms/status: the SMS provider's own `AccountSid`
  (VOX_CONTRACT_SMS_ACCOUNT_SID, default the sandbox's AC_sandbox) in a
  body that sends one, and a valid `X-Twilio-Signature` (HMAC-SHA1 with
  VOX_CONTRACT_SMS_TOKEN, default sandbox-token, over the URL and the
  sorted form) when one is sent (a missing one stays missing: 403);
- GET /v1/usage: when both dates are given, the range the description
  requires (start <= end, at most 366 days), which a schema cannot state;
- POST /v1/webhook-endpoints/{id}/recover: a `since` (and `until`) inside
  the window the description requires (the last 14 days, since <= until),
  which a schema cannot state either;
- POST /v1/documents: the `file` of a positive case is one of the real
  documents of tests/data/documents (PDF, PNG, JPEG), since the ingress
  checks the content (libmagic) and random bytes are no document, which a
  schema cannot state (a negative case keeps what it generated);
- POST /v1/porting-orders and PATCH /v1/porting-orders/{id}: in a
  positive case, a `requested_foc_date` (a date) is moved to a day the
  rules allow (a business day from the 3rd business day to 30 days
  ahead, docs/PORTING.md), and `documents` ids, which must name the
  account's documents, are dropped: a schema cannot state either;
- DELETE /v1/api-keys/{id} never revokes the key the run authenticates
  with (it would turn the rest of the run into 401s); a revoked key is
  still answered by GET with `revoked_at` set, as the document says, so
  that answer is not a "deleted resource still available" (ST301).

Environment: VOX_CONTRACT_KEY_ID (the run's API key id), VOX_CONTRACT_KEY
(the account key), VOX_CONTRACT_CARRIER_KEY and VOX_CONTRACT_CARRIER_SECRET.
"""
import base64
import datetime
import hashlib
import hmac
import itertools
import json
import os
import re
import time
import uuid
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
import schemathesis
from hypothesis import strategies as st

# Valid in libphonenumber's metadata (checked by contract.sh against the
# ingress before the run): several countries, fixed and mobile.
VALID_E164 = [
    "+14155550123", "+14155550187", "+12125550100", "+12025550123",
    "+16475550199", "+442079460000", "+447911123456", "+33142685300",
    "+4930901820", "+4915123456789", "+34912345678", "+390612345678",
    "+46812345678", "+81312345678", "+61293744000", "+5511987654321",
    "+919876543210", "+27215551234",
]


def punctuated(e164):
    """+14155550123 -> +1 (415) 555-0123 style variants a client may send."""
    digits = e164[1:]
    return [
        e164,
        "+%s %s %s" % (digits[:2], digits[2:6], digits[6:]),
        "+%s-%s-%s" % (digits[:2], digits[2:6], digits[6:]),
        "+%s.%s.%s" % (digits[:2], digits[2:6], digits[6:]),
    ]


PHONE_INPUTS = ["+1 (415) 555-0123"] + [p for n in VALID_E164 for p in punctuated(n)]

schemathesis.openapi.format("e164", st.sampled_from(VALID_E164))
schemathesis.openapi.format("phone", st.sampled_from(PHONE_INPUTS))

# format: ndjson: lines of JSON (records good and bad, other values), some
# lines that are not JSON or blank, and at least one JSON line.
_record = st.fixed_dictionaries(
    {
        "id": st.from_regex(r"\A[A-Za-z0-9._:-]{1,40}\Z"),
        "type": st.sampled_from(["inbound_call", "outbound_call", "sms_received", "sms_sent"]),
        "from": st.sampled_from(VALID_E164),
        "to": st.sampled_from(VALID_E164),
        "started_at": st.sampled_from(["2026-11-24T16:02:17Z", "2026-11-24T16:03:00+01:00"]),
    },
    optional={"duration_s": st.integers(0, 86400), "segments": st.integers(1, 100)},
)
_json_line = st.one_of(_record, st.dictionaries(st.text(max_size=5), st.integers(-(2**31), 2**31)), st.integers(-(2**31), 2**31)).map(
    lambda v: json.dumps(v)
)
_other_line = st.sampled_from(["", "   ", "not json", "{", "[1,"])
schemathesis.openapi.format(
    "ndjson",
    st.tuples(_json_line, st.lists(st.one_of(_json_line, _other_line), max_size=4)).map(
        lambda t: "\n".join([t[0], *t[1]]) + "\n"
    ),
)


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    # The body is text: one record per line.
    return value.encode("utf-8", "surrogatepass")


@schemathesis.hook
def filter_case(context, case):
    # On the wire an NDJSON body is text: a generated non-string value has
    # no wire form. And no text "violates" format: ndjson as a request: any
    # text is lines, each reported on its own (only lines none of which is
    # JSON get a 400), so a negative case here would test schemathesis'
    # guess (every string breaks an unknown format), not the server. The
    # negative cases of this operation run with its JSON body.
    negative = case.meta is not None and case.meta.generation.mode.is_negative
    if case.media_type != "application/x-ndjson":
        # The document's rules for every JSON body that no schema here
        # states (they matter where a body takes any JSON value, e.g. a
        # CDR array's items): integers fit in 64 bits, no string or key
        # holds a NUL. A body breaking them is invalid, not a positive case.
        return negative or _plain_json(case.body)
    return isinstance(case.body, str) and not negative


def _plain_json(v):
    if isinstance(v, str):
        return "\x00" not in v
    if isinstance(v, bool) or v is None or isinstance(v, float):
        return True
    if isinstance(v, int):
        return -(2**63) <= v < 2**63
    if isinstance(v, list):
        return all(_plain_json(x) for x in v)
    if isinstance(v, dict):
        return all("\x00" not in k and _plain_json(x) for k, x in v.items())
    return True


IDEM_KEY = re.compile(r"^[!-~]{1,255}$")
SIGNATURE = re.compile(r"^t=[0-9]{1,12}(,v1=[0-9a-f]{64})+$")
ACCOUNT_KEY = os.environ.get("VOX_CONTRACT_KEY", "")
KEY_ID = os.environ.get("VOX_CONTRACT_KEY_ID", "")
CARRIER_KEY = os.environ.get("VOX_CONTRACT_CARRIER_KEY", "")
CARRIER_SECRET = os.environ.get("VOX_CONTRACT_CARRIER_SECRET", "")
SMS_PATH = "/v1/providers/sms/status"
SMS_TOKEN = os.environ.get("VOX_CONTRACT_SMS_TOKEN", "sandbox-token")
SMS_ACCOUNT_SID = os.environ.get("VOX_CONTRACT_SMS_ACCOUNT_SID", "AC_sandbox")
# The payment gateway's webhooks (POST /v1/payment-gateway/events), signed
# with the ingress' VOX_PAYMENT_WEBHOOK_SECRET (default whsec_sandbox).
GATEWAY_SECRET = os.environ.get("VOX_CONTRACT_GATEWAY_SECRET",
                                os.environ.get("VOX_PAYMENT_WEBHOOK_SECRET", "whsec_sandbox"))
GATEWAY_PATH = "/v1/payment-gateway/events"
# A signature is accepted once: each request gets another timestamp, all
# within the 300 s window.
_skew = itertools.cycle(range(0, 240))


def _date(text):
    try:
        return datetime.date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None


class Client(requests.auth.AuthBase):
    """The client's side of the contract, applied to the prepared request
    (after schemathesis chose what to send, so its negative cases, e.g. a
    removed Authorization header, stay what they are)."""

    def __call__(self, r):
        url = urlsplit(r.url)
        if url.path.startswith("/v1/carrier/"):
            self.carrier(r)
        elif url.path == SMS_PATH:
            self.sms(r)
        elif r.method == "DELETE" and url.path == "/v1/api-keys/" + KEY_ID:
            r.url = urlunsplit(url._replace(path="/v1/api-keys/" + str(uuid.uuid4())))
        elif url.path == "/v1/usage":
            r.url = urlunsplit(url._replace(query=self.usage_range(url.query)))
        elif url.path == "/v1/cost-analytics":
            r.url = urlunsplit(url._replace(query=self.usage_range(url.query, "from", "to")))
        elif url.path == GATEWAY_PATH:
            self.gateway(r)
        key = r.headers.get("Idempotency-Key")
        if key is not None and IDEM_KEY.match(key):
            r.headers["Idempotency-Key"] = str(uuid.uuid4())
        return r

    @staticmethod
    def carrier(r):
        if r.headers.get("Authorization") == "Bearer " + ACCOUNT_KEY:
            r.headers["Authorization"] = "Bearer " + CARRIER_KEY
        sig = r.headers.get("Vox-Signature")
        if sig is None or not SIGNATURE.match(sig):
            return
        body = r.body or b""
        if isinstance(body, str):
            body = body.encode()
        t = int(time.time()) - next(_skew)
        mac = hmac.new(CARRIER_SECRET.encode(), b"%d." % t + body, hashlib.sha256)
        r.headers["Vox-Signature"] = "t=%d,v1=%s" % (t, mac.hexdigest())

    @staticmethod
    def sms(r):
        """Twilio's scheme: base64 HMAC-SHA1 over the URL and each
        parameter's name and value, sorted by name."""
        if "X-Twilio-Signature" not in r.headers:
            return
        body = r.body or ""
        if isinstance(body, bytes):
            body = body.decode("utf-8", "surrogateescape")
        params = sorted(parse_qsl(body, keep_blank_values=True))
        text = r.url + "".join(k + v for k, v in params)
        mac = hmac.new(SMS_TOKEN.encode(), text.encode("utf-8", "surrogateescape"), hashlib.sha1)
        r.headers["X-Twilio-Signature"] = base64.b64encode(mac.digest()).decode()

    @staticmethod
    def usage_range(query, first="start_date", last="end_date"):
        q = parse_qsl(query, keep_blank_values=True)
        d = dict(q)
        start, end = _date(d.get(first, "")), _date(d.get(last, ""))
        if start and end and start.year >= 2000 and end.year >= 2000:
            if end < start or (end - start).days >= 366:
                q = [(k, d[first] if k == last else v) for k, v in q]
        return urlencode(q)

    @staticmethod
    def gateway(r):
        """The payment gateway's scheme: t=<unix>,v1=<hex HMAC-SHA256 of
        "<t>.<body>"> with VOX_CONTRACT_GATEWAY_SECRET."""
        if "Gateway-Signature" not in r.headers:
            return
        body = r.body or b""
        if isinstance(body, str):
            body = body.encode()
        t = int(time.time()) - next(_skew)
        mac = hmac.new(GATEWAY_SECRET.encode(), b"%d." % t + body, hashlib.sha256)
        r.headers["Gateway-Signature"] = "t=%d,v1=%s" % (t, mac.hexdigest())


CLIENT = Client()

_DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "documents")
_documents = itertools.cycle(
    [open(os.path.join(_DOCS, name), "rb").read() for name in ("loa.pdf", "stamp.png", "scan.jpg")]
)
_FILE_PART = re.compile(rb'(Content-Disposition: form-data; name="file"; filename="[^"\r\n]*"\r\n(?:[^\r\n]+\r\n)*\r\n)')


class DocumentClient(Client):
    """The client, and in a positive upload's multipart body the file
    part's bytes swapped for a real document. On the wire, not in the case:
    schemathesis takes an edited body holding binary data for a negative
    case."""

    def __call__(self, r):
        r = super().__call__(r)
        body = r.body if isinstance(r.body, bytes) else None
        m = re.search(rb"boundary=([^;\s]+)", r.headers.get("Content-Type", "").encode())
        if body is None or m is None:
            return r
        start = _FILE_PART.search(body)
        if start is None:
            return r
        end = body.find(b"\r\n--" + m.group(1), start.end())
        if end < 0:
            return r
        r.body = body[: start.end()] + next(_documents) + body[end:]
        r.headers["Content-Length"] = str(len(r.body))
        return r


DOCUMENT_CLIENT = DocumentClient()


def _recover_window(body):
    """since and until moved into the last 14 days, in order, when both are
    date-times (a value of another shape stays as generated)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    stamps = []
    for name in ("since", "until"):
        v = body.get(name)
        if isinstance(v, str):
            try:
                datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
            except ValueError:
                continue
            stamps.append(name)
    for i, name in enumerate(stamps):
        # since 2 days ago, until 1 day ago
        t = now - datetime.timedelta(days=2 - i, seconds=next(_skew))
        body[name] = t.strftime("%Y-%m-%dT%H:%M:%SZ")


# US federal holidays as observed (docs/PORTING.md "Rules"), for the FOC
# dates the porting hooks choose.
_HOLIDAYS = {
    "2026-01-01", "2026-01-19", "2026-02-16", "2026-05-25", "2026-06-19", "2026-07-03",
    "2026-09-07", "2026-10-12", "2026-11-11", "2026-11-26", "2026-12-25",
    "2027-01-01", "2027-01-18", "2027-02-15", "2027-05-31", "2027-06-18", "2027-07-05",
    "2027-09-06", "2027-10-11", "2027-11-11", "2027-11-25", "2027-12-24", "2027-12-31",
    "2028-01-17", "2028-02-21", "2028-05-29", "2028-06-19", "2028-07-04", "2028-09-04",
    "2028-10-09", "2028-11-10", "2028-11-23", "2028-12-25",
}


def _business_day(d):
    return d.weekday() < 5 and d.isoformat() not in _HOLIDAYS


def _foc_date():
    """The 5th business day after today (UTC): inside the FOC window."""
    d = datetime.datetime.now(datetime.timezone.utc).date()
    n = 0
    while n < 5:
        d += datetime.timedelta(days=1)
        n += _business_day(d)
    return d.isoformat()


def _porting_order(case, body):
    if not (case.meta is not None and case.meta.generation.mode.is_positive):
        return
    if _date(body.get("requested_foc_date") or ""):
        body["requested_foc_date"] = _foc_date()
    if isinstance(body.get("documents"), dict):
        body["documents"] = None


@schemathesis.hook
def before_call(context, case, kwargs):
    kwargs["auth"] = CLIENT
    path = case.operation.path
    negative = case.meta is not None and case.meta.generation.mode.is_negative
    if path == "/v1/documents" and case.method.upper() == "POST" and not negative:
        kwargs["auth"] = DOCUMENT_CLIENT
    if isinstance(case.body, dict):
        if path == SMS_PATH and "AccountSid" in case.body:
            case.body["AccountSid"] = SMS_ACCOUNT_SID
        elif path == "/v1/webhook-endpoints/{id}/recover":
            _recover_window(case.body)
        elif path in ("/v1/porting-orders", "/v1/porting-orders/{id}"):
            _porting_order(case, case.body)


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """False drops the failure: only GET /v1/api-keys/{id} answering a
    revoked key with its revoked_at, which the document promises."""
    if case.operation.path != "/v1/api-keys/{id}" or case.method.upper() != "GET":
        return True
    if getattr(failure, "code", None) != "ST301":
        return True
    try:
        return response.json().get("revoked_at") is None
    except ValueError:
        return True
