"""Delivery receipts of the SMS sandbox: after a message is accepted, a thread moves it to `sent`
and then to its final status (delivered, or undelivered 30003 / failed 30008 when a receipt rule
says so) and POSTs each status, form-encoded and signed like Twilio, to its StatusCallback.

Receipt rule (POST /admin/faults): {"receipt": "delivered|undelivered|failed|none",
"receipt_delay_ms": N, "to": "+E164"}: without "to" it applies to every number without its own.
"failed" skips `sent` (the carrier never took it); "none" stops at `sent` (no final receipt).
Signature: X-Twilio-Signature = base64(HMAC-SHA1(AuthToken, url + name1 + value1 + name2 + ...)),
the parameters sorted by name. A callback that gets no answer, or 429/5xx, is tried again
(VOX_SMS_CALLBACK_TRIES, 0.5 s doubling); every try is logged and kept in the message's callbacks.
"""

import base64
import hashlib
import hmac
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urlencode

import twilio_api

OUTCOMES = ("delivered", "undelivered", "failed", "none")
ERROR_CODES = {"undelivered": 30003, "failed": 30008}
_FIELDS = ("receipt", "receipt_delay_ms", "to")


class ReceiptError(ValueError):
    pass


def signature(token, url, params):
    """Twilio's X-Twilio-Signature of a form POST to url."""
    data = url + "".join(k + params[k] for k in sorted(params))
    mac = hmac.new(token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def is_receipt_rule(spec):
    return isinstance(spec, dict) and any(k in spec for k in ("receipt", "receipt_delay_ms"))


def parse_rule(spec, default_delay_ms):
    """(to or "*", {"receipt", "receipt_delay_ms"}) from the receipt fields of a rule."""
    outcome = spec.get("receipt", "delivered")
    if outcome not in OUTCOMES:
        raise ReceiptError("receipt must be one of %s" % ", ".join(OUTCOMES))
    delay = spec.get("receipt_delay_ms", default_delay_ms)
    if isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay <= 600000:
        raise ReceiptError("receipt_delay_ms must be an integer in 0..600000")
    to = spec.get("to", "*")
    if to != "*" and not (isinstance(to, str) and twilio_api.E164.fullmatch(to)):
        raise ReceiptError("to must be an E.164 number (or absent: every number)")
    return to, {"receipt": outcome, "receipt_delay_ms": delay}


class Receipts:
    def __init__(self, store, token, log, delay_ms, tries, timeout_ms):
        self.store, self.token, self.log = store, token, log
        self.delay_ms, self.tries, self.timeout_s = delay_ms, tries, timeout_ms / 1000.0
        self.lock = threading.Lock()
        self.rules = {}

    def set(self, rules):
        with self.lock:
            self.rules.update(rules)

    def clear(self, to=None):
        with self.lock:
            if to is None:
                self.rules.clear()
            else:
                self.rules.pop(to, None)

    def list(self):
        with self.lock:
            return [dict(r, to=to) for to, r in sorted(self.rules.items())]

    def rule_for(self, to):
        with self.lock:
            r = self.rules.get(to) or self.rules.get("*")
            return dict(r) if r else {"receipt": "delivered", "receipt_delay_ms": self.delay_ms}

    def start(self, msg):
        rule = self.rule_for(msg["to"])
        threading.Thread(target=self.run, args=(msg, rule), name="receipt-" + msg["sid"], daemon=True).start()

    def run(self, msg, rule):
        delay = rule["receipt_delay_ms"] / 1000.0
        outcome = rule["receipt"]
        steps = [] if outcome == "failed" else ["sent"]
        if outcome != "none":
            steps.append(outcome)
        for status in steps:
            time.sleep(delay)
            code = ERROR_CODES.get(status)
            if not self.store.set_status(msg["sid"], status, code):
                return  # reset meanwhile
            if msg.get("status_callback"):
                self.post(msg, status, code)

    def post(self, msg, status, code):
        url = msg["status_callback"]
        params = {"AccountSid": msg["account_sid"], "MessageSid": msg["sid"], "SmsSid": msg["sid"],
                  "MessageStatus": status, "SmsStatus": status, "To": msg["to"], "From": msg["from"],
                  "ApiVersion": twilio_api.API_VERSION}
        if code is not None:
            params["ErrorCode"] = str(code)
        data = urlencode(sorted(params.items())).encode("utf-8")
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
                   "X-Twilio-Signature": signature(self.token, url, params),
                   "User-Agent": "TwilioProxy/1.1 (voxlink sms-sandbox)"}
        for attempt in range(1, self.tries + 1):
            t0 = time.monotonic()
            http_status, error = None, None
            try:
                req = urllib.request.Request(url, data=data, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                    http_status = r.status
                    r.read()
            except urllib.error.HTTPError as e:
                http_status = e.code
            except (OSError, ValueError) as e:
                error = str(getattr(e, "reason", e))
            ms = int((time.monotonic() - t0) * 1000)
            self.store.add_callback(msg["sid"], {"status": status, "attempt": attempt, "url": url,
                                                 "http_status": http_status, "error": error,
                                                 "at": time.time(), "ms": ms})
            self.log("callback %s %s -> %s try %d/%d: %s (%d ms)" % (
                msg["sid"], status, url, attempt, self.tries, http_status or error, ms))
            retry = http_status is None or http_status == 429 or http_status >= 500
            if not retry or attempt == self.tries:
                return
            time.sleep(0.5 * (2 ** (attempt - 1)))
