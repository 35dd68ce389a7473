"""One suite, every control-store adapter: the SQLite and PostgreSQL stores must agree."""
