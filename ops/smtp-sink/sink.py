#!/usr/bin/python3
"""VoxLink SMTP sink: accepts mail on 127.0.0.1:$VOX_SMTP_PORT and keeps every accepted message in a
Maildir (the stand-in for the mail relay of docs/NOTIFICATIONS.md; `voxctl mail list` reads it).

  /usr/bin/python3 ops/smtp-sink/sink.py [--host 127.0.0.1] [--port 27025] [--maildir DIR]

Fault injection, per recipient (RCPT TO), as a real relay answers:
  reject*@...  550 5.1.1 (permanent: the sender must not retry)
  defer*@...   451 4.3.0 (temporary: the sender retries later)
Settings (environment): VOX_SMTP_PORT (27025), VOX_SMTP_MAILDIR (default $VOX_RUN_DIR/smtp/Maildir,
else ./Maildir). Debian's python3-aiosmtpd. SIGTERM/SIGINT stop it.
"""

import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import argparse  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.handlers import Mailbox  # noqa: E402

MAX_MESSAGE = 10 * 1024 * 1024
_log_lock = threading.Lock()


def log(msg):
    with _log_lock:
        t = time.time()
        sys.stderr.write("%s.%03dZ smtp-sink: %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)),
                                                        int(t * 1000) % 1000, msg))
        sys.stderr.flush()


def fault_for(address):
    """The SMTP answer that refuses a recipient, or None to accept it."""
    local = address.rsplit("@", 1)[0].lower()
    if local.startswith("reject"):
        return "550 5.1.1 <%s>: recipient rejected (sandbox fault: reject*)" % address
    if local.startswith("defer"):
        return "451 4.3.0 <%s>: try again later (sandbox fault: defer*)" % address
    return None


class Sink(Mailbox):
    """Mailbox (one Maildir file per message) with per-recipient faults and a log line per message."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        answer = fault_for(address)
        if answer is not None:
            log("RCPT %s from %s: %s" % (address, session.peer[0], answer[:3]))
            return answer
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    def handle_message(self, message):
        key = self.mailbox.add(message)
        log("stored %s: from %s to %s, subject %r (%d bytes)" % (
            key, message.get("X-MailFrom"), message.get("X-RcptTo"), message.get("Subject", ""),
            len(message.as_bytes())))


def main(argv=None):
    ap = argparse.ArgumentParser(description="VoxLink SMTP sink (Maildir, with reject*/defer* faults)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=None, help="default: VOX_SMTP_PORT or 27025")
    ap.add_argument("--maildir", default=None, help="default: VOX_SMTP_MAILDIR or $VOX_RUN_DIR/smtp/Maildir")
    args = ap.parse_args(argv)

    raw = os.environ.get("VOX_SMTP_PORT", "") or "27025"
    port = args.port
    if port is None:
        port = int(raw) if raw.isdigit() else -1
    if not 1 <= port <= 65535:
        sys.stderr.write("smtp-sink: port %r: expected a number in 1..65535\n" % raw)
        return 2
    maildir = args.maildir or os.environ.get("VOX_SMTP_MAILDIR") or os.path.join(
        os.environ.get("VOX_RUN_DIR") or ".", "smtp", "Maildir")
    try:
        os.makedirs(os.path.dirname(os.path.abspath(maildir)), exist_ok=True)
        handler = Sink(maildir)
    except OSError as e:
        sys.stderr.write("smtp-sink: cannot open Maildir %s: %s\n" % (maildir, e))
        return 1
    ctl = Controller(handler, hostname=args.host, port=port, data_size_limit=MAX_MESSAGE,
                     enable_SMTPUTF8=True, ident="voxlink smtp-sink")
    try:
        ctl.start()
    except Exception as e:  # aiosmtpd raises a bare OSError or its own timeout for a taken port
        sys.stderr.write("smtp-sink: cannot listen on %s:%d: %r\n" % (args.host, port, e))
        return 1

    stop = threading.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: stop.set())
    log("listening on smtp://%s:%d, Maildir %s" % (args.host, port, os.path.abspath(maildir)))
    while not stop.wait(3600):
        pass
    log("stopping")
    ctl.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
