"""The local-access service: dark content opened to entitled libraries, on demand.

``accounts`` (libraries, users, API keys, logins), ``rights`` (who may read
what), ``entitlements`` and ``triggers`` (the facts rights rest on),
``requests`` (asking, deciding, grants), ``delivery`` (verified bytes),
``usage`` (what was read), ``fixity_api`` (the Archivematica Storage Service
subset) and ``web`` (the HTTP layer over all of them).
"""
