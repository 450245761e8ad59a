"""The signature of the sandbox's pushes to the ingress (CDR batches, porting webhooks): docs/CARRIER_CDRS.md.

Vox-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
"""

import hashlib
import hmac


def sign(secret, t, body):
    """The Vox-Signature header value for body (bytes) at unix time t."""
    mac = hmac.new(secret.encode("utf-8"), b"%d." % t + body, hashlib.sha256).hexdigest()
    return "t=%d,v1=%s" % (t, mac)
