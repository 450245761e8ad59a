"""The Twilio-style Messages API of the SMS sandbox: request validation, the message JSON, the list
page, and Twilio's error body ({"code", "message", "more_info", "status"}). No I/O here."""

import email.utils
import math
import re
import secrets
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

API_VERSION = "2010-04-01"
MAX_BODY_CHARS = 1600
E164 = re.compile(r"\+[1-9][0-9]{1,14}")
MESSAGES = re.compile(r"/2010-04-01/Accounts/([^/]+)/Messages\.json")
MESSAGE = re.compile(r"/2010-04-01/Accounts/([^/]+)/Messages/([^/]+)\.json")

# GSM 03.38: the basic set counts one septet, the extension table two (escape + char).
GSM_BASIC = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
                "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM_EXTENDED = set("^{}\\[~]|€\f")


class ApiError(Exception):
    """A Twilio error answer: HTTP status, Twilio error code, message."""

    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self):
        return {"code": self.code, "message": self.message,
                "more_info": "https://www.twilio.com/docs/errors/%d" % self.code, "status": self.status}


def rfc2822(t):
    return email.utils.format_datetime(datetime.fromtimestamp(t, timezone.utc)).replace("-0000", "+0000")


def num_segments(body):
    """How many SMS parts the body takes: GSM-7 (160, or 153 per part) unless a character needs
    UCS-2 (70, or 67 UTF-16 units per part)."""
    if all(c in GSM_BASIC or c in GSM_EXTENDED for c in body):
        units, single, part = sum(2 if c in GSM_EXTENDED else 1 for c in body), 160, 153
    else:
        units, single, part = len(body.encode("utf-16-le")) // 2, 70, 67
    return 1 if units <= single else math.ceil(units / part)


def e164(raw):
    """A phone number from a query string, where an unencoded '+' arrives as a space."""
    raw = (raw or "").strip()
    return raw if not raw or raw.startswith("+") else "+" + raw


def parse_form(body):
    """The form fields (first value of each); ApiError 400 when the body is not a UTF-8 form."""
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                          errors="strict", max_num_fields=100)
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, 20001, "The request body must be application/x-www-form-urlencoded UTF-8 "
                                   "with at most 100 parameters")
    return {k: v[0] for k, v in fields.items()}


def valid_callback(url):
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and len(url) <= 2048


def new_message(account_sid, form, now):
    """The message record for POST .../Messages.json, or ApiError. Checks in Twilio's order."""
    to, sender, body = form.get("To", ""), form.get("From", ""), form.get("Body")
    callback = form.get("StatusCallback", "")
    if not to:
        raise ApiError(400, 21604, "A 'To' phone number is required.")
    if not E164.fullmatch(to):
        raise ApiError(400, 21211, "The 'To' number %s is not a valid phone number." % to[:64])
    if not sender:
        raise ApiError(400, 21603, "A 'From' phone number is required.")
    if not E164.fullmatch(sender) and not re.fullmatch(r"[A-Za-z0-9 ]{1,11}", sender):
        raise ApiError(400, 21212, "The 'From' number %s is not a valid phone number or alphanumeric "
                                   "sender id." % sender[:64])
    if body is None or body == "":
        raise ApiError(400, 21602, "Message body is required.")
    if len(body) > MAX_BODY_CHARS:
        raise ApiError(400, 21617, "The concatenated message body exceeds the %d character limit."
                       % MAX_BODY_CHARS)
    if callback and not valid_callback(callback):
        raise ApiError(400, 21609, "The StatusCallback URL %s is not a valid URL." % callback[:256])
    sid = "SM" + secrets.token_hex(16)
    uri = "/%s/Accounts/%s/Messages/%s.json" % (API_VERSION, account_sid, sid)
    return {"sid": sid, "account_sid": account_sid, "api_version": API_VERSION, "to": to,
            "from": sender, "body": body, "status": "queued", "direction": "outbound-api",
            "num_segments": str(num_segments(body)), "num_media": "0", "price": None, "price_unit": "USD",
            "error_code": None, "error_message": None, "messaging_service_sid": None,
            "date_created": rfc2822(now), "date_updated": rfc2822(now), "date_sent": None,
            "uri": uri, "subresource_uris": {"media": uri[:-5] + "/Media.json"},
            # not in Twilio's answer (public() drops them): the admin view's
            "status_callback": callback or None, "history": [{"status": "queued", "at": now}],
            "callbacks": []}


PRIVATE = ("status_callback", "history", "callbacks")


def public(msg):
    return {k: v for k, v in msg.items() if k not in PRIVATE}


def page(account_sid, messages, query):
    """Twilio's list shape for GET .../Messages.json (newest first; To, From, PageSize, Page)."""
    def q(name):
        return (query.get(name) or [""])[0]
    to, sender = e164(q("To")), e164(q("From"))
    try:
        size = int(q("PageSize") or 50)
        number = int(q("Page") or 0)
    except ValueError:
        raise ApiError(400, 20001, "PageSize and Page must be integers")
    if not 1 <= size <= 1000 or number < 0:
        raise ApiError(400, 20001, "PageSize must be in 1..1000 and Page >= 0")
    rows = [m for m in reversed(messages) if (not to or m["to"] == to) and (not sender or m["from"] == sender)]
    chunk = rows[number * size:(number + 1) * size]
    base = "/%s/Accounts/%s/Messages.json?PageSize=%d" % (API_VERSION, account_sid, size)
    more = (number + 1) * size < len(rows)
    return {"messages": [public(m) for m in chunk], "page": number, "page_size": size,
            "start": number * size, "end": number * size + max(len(chunk) - 1, 0),
            "uri": "%s&Page=%d" % (base, number), "first_page_uri": base + "&Page=0",
            "next_page_uri": "%s&Page=%d" % (base, number + 1) if more else None,
            "previous_page_uri": "%s&Page=%d" % (base, number - 1) if number > 0 else None}
