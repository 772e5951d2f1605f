"""The Kafka backend's sessions and its faust worker."""
