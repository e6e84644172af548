"""Every Kafka client in one place: ``admin`` (broker checks, topics, the tailing source, stream
publishing), ``range`` (reading a topic range for replay), ``publishers`` (the gateway's
acknowledged producers). Imports ``core.items`` for the records it yields, nothing of ``flow``."""
