"""The catalog: what is preserved where, its history, and the work queue."""
