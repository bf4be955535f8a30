"""The clinic's own database: tables (``tables``), migrations (``schema``) and queries (``db``)."""
