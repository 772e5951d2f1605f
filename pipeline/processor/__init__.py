"""The stream processor: the asyncio `runner` drives each payment's `step` (the Canton I/O), which
applies the pure `decisions` and `retry` policy to the payment `book` folded from the log."""
