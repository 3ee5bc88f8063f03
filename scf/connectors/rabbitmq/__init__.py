"""RabbitMQ connector (aio-pika): confirmed publishing, basic.get consuming, job queues, topology.

`connector.py` holds the class, `plans.py` parses requests, `operations.py` runs them, `channels.py`
owns the connection; the pure parts are `settings.py`, `requests.py`, `names.py`, `messages.py` and the
error table `errors.py`.
"""

from scf.connectors.rabbitmq.connector import RabbitMQConnector

__all__ = ["RabbitMQConnector"]
