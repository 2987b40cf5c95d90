"""The Kafka clients the project creates and the processor's Kafka outputs."""
