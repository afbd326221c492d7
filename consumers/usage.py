"""Tokens spent, per conversation, agent, route and day, and the budgets that read them.

A turn's usage is what its model calls reported (``ctx.usage``, summed by the agent loop from the
provider's usage fields). When the turn succeeds the consumer adds it, in one round trip, to:

- ``usage:conv:{agent}:{conversation key}``: ``in``, ``out``, ``turns`` (expires with the history);
- ``usage:agents`` and ``usage:routes``: ``{name}|in``, ``{name}|out``, ``{name}|turns`` (kept);
- ``usage:day:{YYYY-MM-DD}`` (UTC): ``agent|{name}|in`` …, ``route|{label}|in`` … (kept 8 days);

and to the Prometheus counter ``gateway_model_tokens_total{agent,route,direction}``. ``gateway status
--usage`` reads the hashes. Only turns that succeeded count: the tokens of a failed attempt that is
retried are not added (the provider's own bill has them).

A budget (``budget_tokens_per_conversation``, ``budget_tokens_per_day``, in an agent's section or a
route's) is checked before the turn: when input + output tokens already reached it, the turn's one reply
is ``budget_message`` and no model is called. A route's budget applies to its events; an agent's to all
of the agent's. The per-day budget counts every conversation of that agent (or route) since 00:00 UTC.
Turns run at once in several conversations may each pass the check, so a budget can be overshot by the
turns in flight; it is a brake, not an invoice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from agents.context import TurnContext
from agents.usage import Usage
from gateway.core.config import BudgetConfig, GatewayFile
from gateway.core.errors import StoreUnavailable
from gateway.core.metrics import Metrics
from gateway.core.routing import Router
from gateway.core.store.base import Store

log = structlog.get_logger(__name__)
DEFAULT_ROUTE = "default"
DEFAULT_BUDGET_MESSAGE = "This conversation has used up its budget for now. Please try again later."
DAY_TTL = 8 * 24 * 3600.0


def today(now: dt.datetime | None = None) -> str:
    return (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d")


def conversation_usage_key(agent: str, conversation_key: str) -> str:
    return f"usage:conv:{agent}:{conversation_key}"


def day_key(day: str) -> str:
    return f"usage:day:{day}"


def _fields(prefix: str, usage: Usage, turns: int = 1) -> dict[str, int]:
    return {f"{prefix}in": usage.input_tokens, f"{prefix}out": usage.output_tokens, f"{prefix}turns": turns}


def spent(counters: Mapping[str, str], prefix: str = "") -> int:
    """Input + output tokens in a usage hash (fields ``{prefix}in`` and ``{prefix}out``)."""
    return sum(int(counters.get(f"{prefix}{f}", "0")) for f in ("in", "out"))


@dataclass(frozen=True)
class Budget:
    per_conversation: int | None
    per_day: int | None
    message: str | None

    @classmethod
    def of(cls, section: BudgetConfig | None) -> Budget | None:
        if section is None or (
            section.budget_tokens_per_conversation is None and section.budget_tokens_per_day is None
        ):
            return None
        return cls(section.budget_tokens_per_conversation, section.budget_tokens_per_day, section.budget_message)


def exhausted(budget: Budget, conversation: Mapping[str, str], day: Mapping[str, str], day_prefix: str) -> bool:
    """Whether a budget is spent, given the conversation's counters and the day's."""
    if budget.per_conversation is not None and spent(conversation) >= budget.per_conversation:
        return True
    return budget.per_day is not None and spent(day, day_prefix) >= budget.per_day


@dataclass(frozen=True)
class Terms:
    """What the gateway's configuration says about one turn: its route, the route's key, the budgets."""

    route: str
    api_key_env: str | None
    route_budget: Budget | None
    agent_budget: Budget | None


class UsageLedger:
    def __init__(
        self,
        store: Store,
        metrics: Metrics,
        file: GatewayFile | None = None,
        *,
        default_agent: str = "echo",
        conversation_ttl: float | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._file = file or GatewayFile()
        self._router = Router(list(self._file.routes), default_agent)
        self._ttl = conversation_ttl
        self._agent_budgets = {name: Budget.of(spec) for name, spec in self._file.agents.items()}
        self._tokens: dict[tuple[str, str], tuple[Any, Any]] = {}

    def terms(self, agent: str, ctx: TurnContext) -> Terms:
        route = self._router.match(ctx.event.reply_to)
        return Terms(
            route=route.label if route is not None else DEFAULT_ROUTE,
            api_key_env=route.api_key_env if route is not None else None,
            route_budget=Budget.of(route),
            agent_budget=self._agent_budgets.get(agent),
        )

    async def admit(self, agent: str, ctx: TurnContext) -> bool:
        """Give the turn its route and key; False (its reply the budget's message) when a budget is spent."""
        terms = self.terms(agent, ctx)
        ctx.route, ctx.api_key_env = terms.route, terms.api_key_env
        budgets = [(b, f"route|{terms.route}|") for b in (terms.route_budget,) if b is not None]
        budgets += [(b, f"agent|{agent}|") for b in (terms.agent_budget,) if b is not None]
        if not budgets:
            return True
        conversation, day = await asyncio.gather(
            self._store.hall(conversation_usage_key(agent, ctx.conversation_key)), self._store.hall(day_key(today()))
        )
        for budget, prefix in budgets:
            if exhausted(budget, conversation, day, prefix):
                message = next((b.message for b, _ in budgets if b.message), None) or DEFAULT_BUDGET_MESSAGE
                await ctx.reply(budget.message or message)
                self._metrics.budget_exhausted.labels(agent, terms.route).inc()
                ctx.log.info("budget_exhausted", route=terms.route, tokens=spent(conversation))
                return False
        return True

    async def record(self, agent: str, ctx: TurnContext) -> None:
        """Add a succeeded turn's usage everywhere it is counted (one round trip); never fails the turn."""
        usage = ctx.usage
        if not usage:
            return
        route = ctx.route or DEFAULT_ROUTE
        tokens_in, tokens_out = self._children(agent, route)
        tokens_in.inc(usage.input_tokens)
        tokens_out.inc(usage.output_tokens)
        day = {**_fields(f"agent|{agent}|", usage), **_fields(f"route|{route}|", usage)}
        try:
            await asyncio.gather(
                self._store.hincr(conversation_usage_key(agent, ctx.conversation_key), _fields("", usage), self._ttl),
                self._store.hincr("usage:agents", _fields(f"{agent}|", usage)),
                self._store.hincr("usage:routes", _fields(f"{route}|", usage)),
                self._store.hincr(day_key(today()), day, DAY_TTL),
            )
        except StoreUnavailable as exc:
            log.warning("usage_not_recorded", error=str(exc), input_tokens=usage.input_tokens)

    def _children(self, agent: str, route: str) -> tuple[Any, Any]:
        children = self._tokens.get((agent, route))
        if children is None:
            counter = self._metrics.model_tokens
            children = (counter.labels(agent, route, "input"), counter.labels(agent, route, "output"))
            self._tokens[(agent, route)] = children
        return children
