"""The development harness of spine-cds: what a checkout has and the wheel does not ship.

``spine-cds demo`` and ``spine-cds fhir-test-server`` (``commands``, ``demo``,
``fhir_server_command``), the launchers of the Node FHIR test server
(``fhir_server``) and of the service under gunicorn (``service_process``) that the
tests, the benchmarks and the demo share, and the generator of the OpenAPI document's
components (``openapi``).

It may import ``cds_service``; nothing in ``cds_service`` imports it, save the command
line's lazy offer of its two commands (``cds_service/cli/harness.py``), and the server
never does (tests/test_layering.py). pyproject.toml's wheel lists only ``cds_service``
and ``fhir_mappers`` (tests/integration/test_packaging.py checks the built wheel).
"""
