"""The bus: RabbitMQ (``AMQP_URL``) or the in-process twin."""

from gateway.core.bus.base import Bus, Delivery, Handler, QueueInfo, Subscription
from gateway.core.bus.topology import Topology

__all__ = ["Bus", "Delivery", "Handler", "QueueInfo", "Subscription", "Topology"]
