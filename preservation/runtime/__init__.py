"""The processes that do the work: workers running job handlers, and the one active scheduler.

Above the domain services (the handlers call them) and below the interfaces
(``preserve worker`` / ``preserve scheduler``).  The queue itself stays in
:mod:`preservation.jobs`, which the services enqueue into.
"""
