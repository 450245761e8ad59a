#!/usr/bin/env python3
"""The local stack's S3 stand-in: moto in server mode with its IAM checks on.

Starts moto on --host/--port, makes (through moto's own API, while its
checks are still off) an IAM user "voxlink" with an access key allowed
s3:*, creates the bucket, then turns authentication on: from then on every
request must carry a SigV4 signature by that key, so a wrong secret is
refused (403) as AWS, MinIO or Ceph would. The key is random per start;
it is written to <state-dir>/credentials (VOX_S3_ACCESS_KEY=...,
VOX_S3_SECRET_KEY=..., mode 0600) once everything is ready, which is what
`ops/stack` waits for and `ops/stack env` exports. Objects live in memory:
a restart empties the store (documents' rows then point at nothing: the
test stack only).

Runs with the moto venv's python (ops/install-deps: moto[server] pinned).
"""
import argparse
import json
import os
import signal
import sys
import threading
import logging

import boto3
from botocore.config import Config
from moto import settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.server import ThreadedMotoServer

POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=27090)
    ap.add_argument("--bucket", default="voxlink-documents")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--state-dir", required=True)
    args = ap.parse_args()

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    os.makedirs(args.state_dir, exist_ok=True)
    creds_path = os.path.join(args.state_dir, "credentials")
    # A file from an earlier run names a key this run does not know.
    try:
        os.unlink(creds_path)
    except FileNotFoundError:
        pass

    server = ThreadedMotoServer(ip_address=args.host, port=args.port, verbose=False)
    server.start()
    url = f"http://{args.host}:{args.port}"

    # Checks are off until reset-auth below: the setup needs no key.
    setup = dict(endpoint_url=url, region_name=args.region,
                 aws_access_key_id="setup", aws_secret_access_key="setup",
                 config=Config(s3={"addressing_style": "path"}))
    iam = boto3.client("iam", **setup)
    iam.create_user(UserName="voxlink")
    key = iam.create_access_key(UserName="voxlink")["AccessKey"]
    iam.put_user_policy(UserName="voxlink", PolicyName="voxlink-s3",
                        PolicyDocument=json.dumps(POLICY))
    s3 = boto3.client("s3", **setup)
    if args.region == "us-east-1":
        s3.create_bucket(Bucket=args.bucket)
    else:
        s3.create_bucket(Bucket=args.bucket,
                         CreateBucketConfiguration={"LocationConstraint": args.region})
    # What POST /moto-api/reset-auth does, in-process: checks on for all.
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    ActionAuthenticatorMixin.request_count = 0

    tmp = creds_path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"VOX_S3_ACCESS_KEY={key['AccessKeyId']}\n")
        f.write(f"VOX_S3_SECRET_KEY={key['SecretAccessKey']}\n")
    os.replace(tmp, creds_path)
    print(f"s3-standin: moto on {url}, bucket {args.bucket}, key {key['AccessKeyId']}",
          flush=True)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    try:
        os.unlink(creds_path)
    except FileNotFoundError:
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
