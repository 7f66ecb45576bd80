"""Kafka adapters (aiokafka): the log of distributed mode, with the guarantees of the log port."""

from headrace.adapters.kafka.admin import TopicError
from headrace.adapters.kafka.consumer import KafkaConsumer
from headrace.adapters.kafka.log import KafkaLog, LogClosedError

__all__ = ["KafkaConsumer", "KafkaLog", "LogClosedError", "TopicError"]
