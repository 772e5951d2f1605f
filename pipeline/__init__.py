"""The bottom layer: events, the event log, Canton clients, the processor, the simulator."""
