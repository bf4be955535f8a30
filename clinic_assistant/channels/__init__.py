"""Input channels: how messages reach the assistant."""
