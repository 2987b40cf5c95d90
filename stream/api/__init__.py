"""The worker's HTTP API: ``server`` (routes, ``/metrics``, ``/health``), ``lookup`` (the
answers, shared with the CLI) and ``openapi`` (the document served at ``/openapi.json``)."""
