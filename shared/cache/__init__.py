"""The exact response cache: canonical keys (keys.py), one small storage interface
(store.py) with two backends, the database (sql.py) and Redis (redis_store.py)."""
