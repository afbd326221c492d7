"""`gateway serve` and `gateway consume` run side by side with one environment; a taken port is one clear line."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from gateway.core.settings import Settings
from tests.e2e.test_cli_config import gateway
from tests.support.processes import GatewayProcess, free_port

pytestmark = pytest.mark.e2e


def test_serve_and_consume_default_to_different_ports() -> None:
    settings = Settings()
    assert (settings.port, settings.consume_port) == (8080, 8081)


async def test_serve_and_consume_start_side_by_side_from_one_environment(services: tuple[str, str, str]) -> None:
    amqp, redis, namespace = services
    env = {
        "AMQP_URL": amqp,
        "REDIS_URL": redis,
        "GATEWAY_NAMESPACE": namespace,
        "GATEWAY_PORT": str(free_port()),
        "GATEWAY_CONSUME_PORT": str(free_port()),
    }
    serve = await GatewayProcess("serve", env).start()
    try:
        consume = await GatewayProcess("consume", env).start()
        try:
            assert serve.port == int(env["GATEWAY_PORT"])
            assert consume.port == int(env["GATEWAY_CONSUME_PORT"])
        finally:
            assert await consume.terminate() == 0
    finally:
        assert await serve.terminate() == 0


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("command", "variable"), [("serve", "GATEWAY_PORT"), ("consume", "GATEWAY_CONSUME_PORT"), ("dev", "GATEWAY_PORT")]
)
def test_a_port_in_use_is_one_line_that_says_what_to_set(
    services: tuple[str, str, str], taken_port: int, command: str, variable: str
) -> None:
    amqp, redis, namespace = services
    env = {"AMQP_URL": amqp, "REDIS_URL": redis, "GATEWAY_NAMESPACE": namespace, variable: str(taken_port)}
    result = gateway(command, env=env, timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"gateway: cannot listen on 127.0.0.1:{taken_port}: the port is in use (another gateway?); "
        f"set {variable} to a free port"
    ]


def test_an_address_not_of_this_machine_says_to_set_gateway_host() -> None:
    from gateway.core.errors import ConfigError
    from gateway.server import ensure_port_free

    with pytest.raises(ConfigError, match=r"192\.0\.2\.1:8080: not an address of this machine; set GATEWAY_HOST"):
        ensure_port_free("192.0.2.1", 8080, "GATEWAY_PORT")  # TEST-NET-1: never local
