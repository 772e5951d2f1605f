"""The stream processor: pure decisions, the payment book, and the asyncio runner around them."""
