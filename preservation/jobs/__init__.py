"""The durable job queue in the catalog: job kinds, enqueue, claim under a lease, retry, dead-letter, admin.

What runs the jobs (workers, handlers, the scheduler) is :mod:`preservation.runtime`.
"""
