"""The SMS sandbox's messages, under one lock, kept in DIR/messages.json (atomic rewrite) when the
sandbox runs with --state-dir. The oldest messages go past MAX_MESSAGES."""

import copy
import json
import os
import threading
import time

from twilio_api import rfc2822

MAX_MESSAGES = 10000


class Store:
    def __init__(self, state_dir=None, log=None):
        self.lock = threading.Lock()
        self.path = os.path.join(state_dir, "messages.json") if state_dir else None
        self.log = log or (lambda m: None)
        self.messages = {}  # sid -> record, in arrival order
        if self.path and os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as f:
                for m in json.load(f).get("messages", []):
                    self.messages[m["sid"]] = m

    def save(self):  # under self.lock
        if not self.path:
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"messages": list(self.messages.values())}, f)
        os.replace(tmp, self.path)

    def add(self, msg):
        with self.lock:
            self.messages[msg["sid"]] = msg
            while len(self.messages) > MAX_MESSAGES:
                del self.messages[next(iter(self.messages))]
            self.save()

    def get(self, sid):
        with self.lock:
            m = self.messages.get(sid)
            return copy.deepcopy(m) if m else None

    def all(self, to=None):
        with self.lock:
            return [copy.deepcopy(m) for m in self.messages.values() if not to or m["to"] == to]

    def set_status(self, sid, status, error_code=None):
        """Moves a message to status (with its history entry); False if it is gone (reset)."""
        now = time.time()
        with self.lock:
            m = self.messages.get(sid)
            if m is None:
                return False
            m["status"] = status
            m["date_updated"] = rfc2822(now)
            if status == "sent":
                m["date_sent"] = rfc2822(now)
            entry = {"status": status, "at": now}
            if error_code is not None:
                m["error_code"] = error_code
                m["error_message"] = ERROR_MESSAGES.get(error_code)
                entry["error_code"] = error_code
            m["history"].append(entry)
            self.save()
            return True

    def add_callback(self, sid, entry):
        with self.lock:
            m = self.messages.get(sid)
            if m is not None:
                m["callbacks"].append(entry)
                self.save()

    def reset(self):
        with self.lock:
            self.messages.clear()
            self.save()

    def count(self):
        with self.lock:
            return len(self.messages)


ERROR_MESSAGES = {30003: "Unreachable destination handset", 30008: "Unknown error"}
