"""The staff console: an aiohttp app to review conversations, work requests and teach the assistant."""
