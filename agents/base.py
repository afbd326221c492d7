"""The agent contract: three lifecycle hooks, any framework behind them.

    on_session_enter(ctx)   once per warm instance (conversation), before its first event
    on_event(ctx, event)    once per turn; answer through ctx.reply / ctx.react / ctx.typing
    on_session_leave(ctx)   on idle release (default 30 min), eviction or shutdown

Only ``on_event`` is required. An agent can be an object (one shared for every
conversation; per-conversation state goes in ``ctx.state`` or ``ctx.memory``)
or a class (instantiated once per warm conversation). State that must survive
a move to another process belongs in ``ctx.memory`` or the history, which live
in Redis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from agents.context import SessionContext, TurnContext
    from gateway.core.events import Event


@runtime_checkable
class AgentLike(Protocol):
    async def on_event(self, ctx: TurnContext, event: Event) -> None: ...


async def enter(agent: object, ctx: SessionContext) -> None:
    hook = getattr(agent, "on_session_enter", None)
    if hook is not None:
        await hook(ctx)


async def leave(agent: object, ctx: SessionContext) -> None:
    hook = getattr(agent, "on_session_leave", None)
    if hook is not None:
        await hook(ctx)
