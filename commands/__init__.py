"""The top layer: configuration, catalogue, scheduler, recovery, the CLI and the local API."""
