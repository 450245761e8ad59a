"""Fault injection for the carrier sandbox: per endpoint, added latency, error answers (at random or
the next N calls), held requests (client timeouts) and dropped connections, plus call statistics.

A rule (JSON, every field optional but `endpoint`):
  endpoint     search | order | get | configure | release | voice (PATCH .../voice, the versioned
               voice settings) | portability | port_create | port_update | port_cancel | port_get
               (porting.py) | "*" (any endpoint without its own rule)
  latency_ms   delay added to every matching call
  error_rate   probability (0..1) that a call fails
  fail_next    the next N calls fail, later ones succeed (deterministic)
  status       HTTP status of a failed call (default 503), with a Telnyx-style error body
  timeout_ms   a failed call is held this long without an answer, then answered 504
  refuse       a failed call has its connection reset at once, without any answer
  phase        "before" (default): the call fails without effect; "after": the carrier does the
               work (the order goes through, the number is released) and only the answer is lost
  retry_after  seconds, sent as Retry-After with a failed call's answer
A call fails when fail_next still counts, or when error_rate draws it; a rule with refuse or
timeout_ms and neither fail_next nor error_rate fails every call.
"""

import random
import threading

ENDPOINTS = ("search", "order", "get", "configure", "release", "voice", "portability", "port_create",
             "port_update", "port_cancel", "port_get")
_FIELDS = ("endpoint", "latency_ms", "error_rate", "fail_next", "status", "timeout_ms", "refuse",
           "phase", "retry_after")


class FaultError(ValueError):
    pass


def _int(spec, name, lo, hi, default):
    v = spec.get(name, default)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise FaultError("%s must be an integer in %d..%d" % (name, lo, hi))
    return v


class Rule:
    def __init__(self, spec):
        if not isinstance(spec, dict):
            raise FaultError("a fault rule is a JSON object")
        unknown = sorted(set(spec) - set(_FIELDS))
        if unknown:
            raise FaultError("unknown field(s) %s; known: %s" % (", ".join(unknown), ", ".join(_FIELDS)))
        self.endpoint = spec.get("endpoint")
        if self.endpoint not in ENDPOINTS + ("*",):
            raise FaultError("endpoint must be one of %s or \"*\"" % ", ".join(ENDPOINTS))
        self.latency_ms = _int(spec, "latency_ms", 0, 600000, 0)
        rate = spec.get("error_rate", 0)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise FaultError("error_rate must be a number in 0..1")
        self.error_rate = float(rate)
        self.counted = spec.get("fail_next") is not None
        self.fail_next = _int(spec, "fail_next", 0, 1000000, 0)
        self.status = _int(spec, "status", 400, 599, 503)
        self.timeout_ms = _int(spec, "timeout_ms", 0, 600000, 0)
        self.refuse = spec.get("refuse", False)
        if not isinstance(self.refuse, bool):
            raise FaultError("refuse must be true or false")
        self.phase = spec.get("phase", "before")
        if self.phase not in ("before", "after"):
            raise FaultError("phase must be \"before\" or \"after\"")
        self.retry_after = _int(spec, "retry_after", 0, 86400, None)

    def as_json(self):
        out = {"endpoint": self.endpoint, "latency_ms": self.latency_ms, "error_rate": self.error_rate,
               "status": self.status, "timeout_ms": self.timeout_ms, "refuse": self.refuse,
               "phase": self.phase}
        if self.counted:
            out["fail_next"] = self.fail_next
        if self.retry_after is not None:
            out["retry_after"] = self.retry_after
        return out


class Decision:
    """What to do to one call: latency_ms first, then action None | "status" | "timeout" | "refuse"."""

    __slots__ = ("latency_ms", "action", "status", "timeout_ms", "phase", "retry_after")

    def __init__(self, latency_ms=0, action=None, status=503, timeout_ms=0, phase="before",
                 retry_after=None):
        self.latency_ms = latency_ms
        self.action = action
        self.status = status
        self.timeout_ms = timeout_ms
        self.phase = phase
        self.retry_after = retry_after


def parse(obj):
    """Rules from JSON: one rule, a list of rules, or {"faults": [...]}, or {endpoint: rule}."""
    if isinstance(obj, dict) and "faults" in obj and len(obj) == 1:
        obj = obj["faults"]
    if isinstance(obj, list):
        return [Rule(r) for r in obj]
    if isinstance(obj, dict) and "endpoint" not in obj:
        rules = []
        for ep, spec in obj.items():
            if not isinstance(spec, dict):
                raise FaultError("rule for %r is not an object" % ep)
            rules.append(Rule(dict(spec, endpoint=ep)))
        return rules
    return [Rule(obj)]


class Faults:
    def __init__(self, seed=None):
        self.lock = threading.Lock()
        self.rules = {}
        self.rng = random.Random(seed)
        self.reset_stats()

    def reset_stats(self):
        self.calls = {e: 0 for e in ENDPOINTS}
        self.injected = {e: {"status": 0, "timeout": 0, "refuse": 0, "latency_ms": 0} for e in ENDPOINTS}
        self.responses = {e: {} for e in ENDPOINTS}

    def set(self, rules):
        with self.lock:
            for r in rules:
                self.rules[r.endpoint] = r

    def clear(self, endpoint=None):
        with self.lock:
            if endpoint is None:
                self.rules.clear()
            else:
                self.rules.pop(endpoint, None)

    def list(self):
        with self.lock:
            return [self.rules[k].as_json() for k in sorted(self.rules)]

    def decide(self, endpoint):
        """Counts the call and decides its fault (a Decision; action None: answer normally)."""
        with self.lock:
            self.calls[endpoint] += 1
            rule = self.rules.get(endpoint) or self.rules.get("*")
            if rule is None:
                return Decision()
            fail = False
            if rule.counted and rule.fail_next > 0:
                rule.fail_next -= 1
                fail = True
            elif rule.error_rate > 0:
                fail = self.rng.random() < rule.error_rate
            elif not rule.counted and (rule.refuse or rule.timeout_ms > 0):
                fail = True
            action = None
            if fail:
                action = "refuse" if rule.refuse else "timeout" if rule.timeout_ms > 0 else "status"
                self.injected[endpoint][action] += 1
            self.injected[endpoint]["latency_ms"] += rule.latency_ms
            return Decision(rule.latency_ms, action, rule.status, rule.timeout_ms, rule.phase,
                            rule.retry_after)

    def answered(self, endpoint, status):
        with self.lock:
            r = self.responses[endpoint]
            r[str(status)] = r.get(str(status), 0) + 1

    def stats(self):
        with self.lock:
            return {"calls": dict(self.calls),
                    "injected": {e: dict(v) for e, v in self.injected.items()},
                    "responses": {e: dict(v) for e, v in self.responses.items()}}
