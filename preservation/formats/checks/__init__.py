"""The format checks, which run only inside validating processes (``process``), never in the one that ingests.

``base`` holds the report and the table of checks by kind; ``pdf``,
``markup`` (XML, JATS, ONIX), ``epub`` and ``image`` register one check each
(or three); ``process`` is the validating process's main loop and limits.
"""
