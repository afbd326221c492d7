"""``python -m gateway.healthcheck``: the container's health probe, for serve (``GATEWAY_PORT``) and consume
(``GATEWAY_CONSUME_PORT``) alike: healthy when either answers ``/healthz`` on 127.0.0.1."""

from __future__ import annotations

import os
import sys
import urllib.request


def healthy(port: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def main() -> int:
    ports = (os.environ.get("GATEWAY_PORT", "8080"), os.environ.get("GATEWAY_CONSUME_PORT", "8081"))
    return 0 if any(healthy(p) for p in ports) else 1


if __name__ == "__main__":
    sys.exit(main())
