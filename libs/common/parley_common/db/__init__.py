"""PostgreSQL: the pool and the migrations."""
