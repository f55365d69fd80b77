"""The HTTP layer of the access service: thin routes over ``preservation.access``.

``app.create_app`` builds the ASGI application (JSON API under ``/api/v1``,
the Storage Service fixity subset under ``/api/v2``, the portal, staff
pages); ``server.serve`` runs it with uvicorn.
"""
