"""``gateway send``: sign a sample event with the configured secret and post it, like ``stripe trigger``.

gateway send slack "hello" [--channel C0DEV] [--thread TS]
gateway send telegram "hello" [--bot default] [--chat 1111111] [--topic 23]
gateway send webhook SOURCE "hello" [--customer cus_dev]
gateway send whatsapp "hello" [--user 16505551234] [--number 106540352242922]
gateway send teams "hello" --key PEM --kid KID [--service-url URL]

The webhook event is built from SOURCE's JSON pointers in gateway.toml (customer_pointer, text_pointer,
type_pointer) and signed with the first secret of its secret_env. A WhatsApp notification is signed with
WHATSAPP_APP_SECRET. A Teams activity carries a Bot Connector-shaped JWT signed with --key: Microsoft signs
real ones, so it is accepted only where TEAMS_OPENID_METADATA_URL serves that key (a local key set).
Each goes to --url, default http://GATEWAY_HOST:GATEWAY_PORT; exit status 0 when the gateway answered 200.
"""

from __future__ import annotations

import argparse
from typing import Any

import aiohttp

from connectors.registry import BUILT_IN, platforms
from gateway.commands.parsers import documented_parser
from gateway.core import tracing
from gateway.core.errors import ConfigError
from gateway.core.settings import Settings


async def run_send(settings: Settings, args: argparse.Namespace) -> int:
    platform = platforms(settings)[args.platform]
    if platform.sample is None:
        raise ConfigError(f"`gateway send {args.platform}` is not available: that platform has no sample event")
    request = platform.sample(settings, args)
    path, body, headers = request.path, request.body, request.headers
    url = (args.url or f"http://{settings.host}:{settings.port}").rstrip("/") + path
    async with aiohttp.ClientSession() as session:
        with tracing.span(f"gateway send {args.platform}", kind="client", attributes={"url.full": url}) as current:
            tracing.inject(headers)  # the gateway's trace of this event continues this one
            try:
                async with session.post(url, data=body, headers=headers) as resp:
                    text = await resp.text()
            except aiohttp.ClientError as exc:
                tracing.set_error(current, str(exc))
                print(f"could not reach the gateway at {url}: {exc}")
                return 1
            tracing.set_attributes(current, **{"http.response.status_code": resp.status})
    print(f"POST {url} -> {resp.status} {text}".rstrip())
    return 0 if resp.status == 200 else 1


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = documented_parser(sub, "send", help="sign and post a sample event to a running gateway", doc=__doc__)
    p.add_argument("--url", help="gateway base URL (default http://GATEWAY_HOST:GATEWAY_PORT)")
    sub_platforms = p.add_subparsers(dest="platform", required=True)
    # Subcommands for the built-in platforms (GATEWAY_PLATFORMS is read later, with the settings).
    for platform in BUILT_IN:
        if platform.sample is None or platform.send_arguments is None:
            continue
        one = sub_platforms.add_parser(platform.name, help=platform.send_help)
        platform.send_arguments(one)
        one.add_argument("--url", default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # `send slack "hi" --url U`
    p.set_defaults(run=run_send)
