"""Pre-generate distinct, validly signed Slack ``event_callback`` requests for wrk.

One request per line, three tab-separated fields: ``timestamp<TAB>signature<TAB>body``.
The body is compact JSON (no tabs, no newlines), so ``replay.lua`` can split a line
without a JSON parser. Every line has its own ``event_id``; channels and thread
roots vary so the gateway spreads the events over all its partitions.

Signatures are Slack v0: ``"v0=" + hex(HMAC-SHA256(secret, "v0:{ts}:{body}"))``.
The gateway refuses timestamps more than 300 s from its clock, so generate right
before the wrk run that replays the file (``run.py`` does, once per wrk run).

    python bench/ingress/gen_events.py --count 100000 --out /tmp/events.tsv --secret s3cret
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import sys
import time


def make_body(run: str, i: int, ts: int) -> bytes:
    channel = f"C{(i * 7919) % 1009:05d}"  # ~1,000 channels
    # Every 4th event is a reply in an existing thread; the others start a thread of their own.
    msg_ts = f"{ts}.{i % 1_000_000:06d}"
    thread_ts = f"{ts - 60}.{(i // 4) % 1_000_000:06d}" if i % 4 == 0 else None
    text = f"load test message {i} from run {run}: Hi there! Thanks for sharing the info!"
    event: dict[str, object] = {
        "client_msg_id": f"{run}-{i:08d}",
        "type": "message",
        "text": text,
        "user": f"U{i % 5003:05d}",
        "ts": msg_ts,
        "team": "T0BENCH01",
        "blocks": [
            {
                "type": "rich_text",
                "block_id": f"b{i % 997}",
                "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}],
            }
        ],
        "channel": channel,
        "event_ts": msg_ts,
        "channel_type": "channel",
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
        event["parent_user_id"] = "U00001"
    envelope = {
        "token": "verification-token",
        "team_id": "T0BENCH01",
        "api_app_id": "A0BENCH01",
        "event": event,
        "type": "event_callback",
        "event_id": f"Ev{run}{i:08d}",
        "event_time": ts,
        "authorizations": [
            {"team_id": "T0BENCH01", "user_id": "UBOT00001", "is_bot": True, "is_enterprise_install": False}
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-message-T0BENCH01-{channel}",
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=200_000, help="number of distinct requests (default 200000)")
    p.add_argument("--out", required=True, help="output file (one request per line)")
    p.add_argument("--secret", default=os.environ.get("SLACK_SIGNING_SECRET"), help="signing secret")
    p.add_argument("--run", default=None, help="event_id prefix, unique per file (default: random)")
    p.add_argument("--timestamp", type=int, default=None, help="X-Slack-Request-Timestamp (default: now)")
    args = p.parse_args(argv)
    if not args.secret:
        p.error("--secret or SLACK_SIGNING_SECRET is required")
    run = args.run or os.urandom(4).hex().upper()
    ts = args.timestamp or int(time.time())
    key = args.secret.encode()
    prefix = b"v0:" + str(ts).encode() + b":"
    ts_field = str(ts).encode()
    tmp = args.out + ".tmp"
    with open(tmp, "wb", buffering=1 << 20) as f:
        for i in range(args.count):
            body = make_body(run, i, ts)
            sig = hmac.new(key, prefix + body, hashlib.sha256).hexdigest().encode()
            f.write(ts_field + b"\tv0=" + sig + b"\t" + body + b"\n")
    os.replace(tmp, args.out)
    print(json.dumps({"out": args.out, "count": args.count, "run": run, "timestamp": ts}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
