"""The metadata database: SQLAlchemy tables and Alembic migrations, SQLite or PostgreSQL."""
