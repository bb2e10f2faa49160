"""Training jobs: the request a client sends, the store (SQLite), the pool that runs them in
worker processes, and the worker itself (``python -m sightline.serve.jobs.worker``)."""
