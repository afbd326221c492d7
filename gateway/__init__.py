"""Chat-connector gateway: verified ingress, ordered dispatch to agents, rate-limited replies."""

from gateway.core.events import Event, EventKind, OutboundMessage, ReplyAddress, Sender

__all__ = ["Event", "EventKind", "OutboundMessage", "ReplyAddress", "Sender"]
__version__ = "0.1.0"
