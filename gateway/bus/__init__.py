"""The bus: RabbitMQ (``AMQP_URL``) or the in-process twin."""

from gateway.bus.base import Bus, Delivery, Handler, QueueInfo, Subscription
from gateway.bus.topology import Topology

__all__ = ["Bus", "Delivery", "Handler", "QueueInfo", "Subscription", "Topology"]
