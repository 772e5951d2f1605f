"""The event log: its port, the embedded (RocksDB) and Kafka backends, the store under them."""
