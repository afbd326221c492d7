"""CPU cost of one Discord interaction at ingress: Ed25519 verification (PyNaCl) and parse into an Event.

    python bench/discord/verify.py              # 20,000 requests, best of 3
    python bench/discord/verify.py --n 5000

Times ``DiscordConnector.handle`` (timestamp check, signature, JSON, event) on a slash command shaped like
Discord's, and ``VerifyKey.verify`` alone, both per request.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from nacl.signing import SigningKey

from connectors.base import InboundRequest
from connectors.discord.connector import DiscordConnector
from connectors.discord.platform import slash_command
from connectors.discord.verify import public_key, sign


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    args = parser.parse_args()
    key = SigningKey(os.urandom(32))
    verify_key = public_key(bytes(key.verify_key).hex())
    connector = DiscordConnector(verify_key, 300)
    body = json.dumps(slash_command("ask", "hello")).encode()
    ts = str(int(time.time()))
    signature = sign(key, ts, body)
    headers = {"x-signature-ed25519": signature, "x-signature-timestamp": ts}
    request = InboundRequest("interactions", headers, body, time.time())
    raw = bytes.fromhex(signature)
    cases = {
        "handle (verify + parse)": lambda: connector.handle(request),
        "VerifyKey.verify only": lambda: verify_key.verify(ts.encode() + body, raw),
    }
    for name, fn in cases.items():
        seconds = min(timeit.repeat(fn, number=args.n, repeat=3)) / args.n
        print(f"{name:26} {seconds * 1e6:6.1f} us per request ({len(body)}-byte body)")


if __name__ == "__main__":
    main()
