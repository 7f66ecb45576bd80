"""headrace: a Kafka-native engine for durable functions."""
