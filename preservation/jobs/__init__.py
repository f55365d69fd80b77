"""Durable jobs in the catalog: enqueue, claim, run, retry, dead-letter."""
