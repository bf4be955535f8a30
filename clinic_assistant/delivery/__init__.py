"""Delivery of consultation requests to the clinic's webhook: ``signing`` and the outbox ``worker``."""
