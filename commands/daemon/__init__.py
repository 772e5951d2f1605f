"""`billing start`: the scheduler, the processor, the local API and the alerts in one process."""
