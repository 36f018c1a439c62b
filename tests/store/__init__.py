"""The schedule database: one contract over SQLite, PostgreSQL and a database that started at the first schema; migrations; concurrency."""
