from tests.e2e.conftest import slack, telegram

__all__ = ["slack", "telegram"]
