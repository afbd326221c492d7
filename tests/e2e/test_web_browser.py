"""The web chat page in a real browser (Debian's Chromium, driven by Playwright) against serve + consume on
real RabbitMQ and Redis: type, see the reply, reload and see the history, kill the consumer and still get
the reply once it is back, each message shown once."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.e2e.conftest import gateway_env
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support.processes import GatewayProcess
from tests.support.services import service_env

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
WEB_SECRET = "e2e-web-secret-0123456789abcdefghij"


def chromium() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed and CI=true: .ci/run installs it from Debian's packages")
    pytest.skip("chromium is not installed (apt-get install chromium)")


@pytest.fixture
async def page() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        context = await browser.new_context(viewport={"width": 390, "height": 720})  # a phone-sized screen
        yield await context.new_page()
        await browser.close()


async def bubbles(page: Any) -> list[str]:
    return [str(t) for t in await page.locator("#log li").all_inner_texts()]


async def test_chat_in_a_browser_survives_a_reload_and_a_consumer_kill(
    page: Any, services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, tmp_path: Path
) -> None:
    env = gateway_env(slack, telegram, **service_env(services), GATEWAY_WEB_SECRET=WEB_SECRET)
    serve = await GatewayProcess("serve", env).start()
    consume = await GatewayProcess("consume", env).start()
    try:
        await page.goto(f"{serve.url}/chat")
        # A locator, not wait_for_function: the page's CSP (default-src 'self') rightly refuses eval.
        await page.locator("#status:text-is('connected')").wait_for(timeout=10_000)
        await page.fill("#text", "hello browser")
        await page.press("#text", "Enter")
        await page.wait_for_selector("#log li.agent:has-text('echo: hello browser')", timeout=20_000)
        assert await bubbles(page) == ["hello browser", "echo: hello browser"]
        if os.environ.get("UPDATE_SCREENSHOTS") == "1":
            await page.screenshot(path=str(ROOT / "docs" / "web-chat.png"))

        await page.reload()
        await page.wait_for_selector("#log li.agent:has-text('echo: hello browser')", timeout=10_000)
        assert await bubbles(page) == ["hello browser", "echo: hello browser"], "history after a reload, once"

        await consume.kill()
        await page.fill("#text", "are you there?")
        await page.click("#send")
        await page.wait_for_selector("#log li.user:has-text('are you there?')")
        consume = await GatewayProcess("consume", env).start()
        await page.wait_for_selector("#log li.agent:has-text('echo: are you there?')", timeout=30_000)
        assert await bubbles(page) == [
            "hello browser",
            "echo: hello browser",
            "are you there?",
            "echo: are you there?",
        ]
    finally:
        await serve.terminate()
        await consume.terminate()


async def test_the_widget_opens_the_chat_on_another_page(
    page: Any, services: tuple[str, str, str], slack: FakeSlack, telegram: FakeTelegram, tmp_path: Path
) -> None:
    env = gateway_env(slack, telegram, **service_env(services), GATEWAY_WEB_SECRET=WEB_SECRET)
    serve = await GatewayProcess("serve", env).start()
    try:
        html = f'<html><body><h1>Shop</h1><script src="{serve.url}/chat/widget.js"></script></body></html>'

        # A page of another site (another origin: its own port), embedding the widget with one script tag.
        async def home(_: web.Request) -> web.Response:
            return web.Response(text=html, content_type="text/html")

        shop = web.Application()
        shop.router.add_get("/", home)
        runner = web.AppRunner(shop)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        await page.goto(f"http://127.0.0.1:{port}/")
        await page.click("button:has-text('Chat')")
        frame = page.frame_locator("iframe[title=Chat]")
        await frame.locator("#status:text-is('connected')").wait_for(timeout=10_000)
        await frame.locator("#text").fill("from the widget")
        await frame.locator("#text").press("Enter")
        await frame.locator("#log li.user:has-text('from the widget')").wait_for()
        assert await page.locator("button[aria-expanded=true]").count() == 1
        await runner.cleanup()
    finally:
        await serve.terminate()
