"""The ``spine-cds`` command: serve the service, and tools for integrators and reviewers.

``serve`` runs the service (``serve``); ``try``, ``load-examples``,
``review-examples`` and ``client-jwks`` play the EHR's part (``ehr``); ``observation-codes``
lists the codes a patient's results carry on the EHR's server (``codes``); ``report`` and
``audit-purge`` read and tidy the audit (``audit``); ``replay`` replays the rules over
a hospital's Bulk Data export (``replay``); ``demo`` and ``fhir-test-server``
are the development harness's, offered from a source checkout (``harness``). Each
module holds its commands' click options and a few lines that hand over to
``cds_service.tools``. Tool exit codes: 0 ok, 1 a review or demo mismatch, 2 usage or
input error, 3 FHIR server problem, 4 service error (130: the demo was interrupted).
"""

from __future__ import annotations

import click

from cds_service import __version__
from cds_service.cli.audit import audit_purge, report
from cds_service.cli.codes import observation_codes_command
from cds_service.cli.ehr import client_jwks, load_examples_command, review_examples, try_command
from cds_service.cli.export_download import export_download
from cds_service.cli.harness import HARNESS_COMMANDS, harness_command
from cds_service.cli.replay import replay
from cds_service.cli.serve import serve

__all__ = ["main"]


class _SpineCds(click.Group):
    """The commands of the package, and the harness's, loaded only when run."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *HARNESS_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is None and cmd_name in HARNESS_COMMANDS:
            return harness_command(cmd_name)
        return found


@click.group(cls=_SpineCds)
@click.version_option(__version__, prog_name="spine-cds")
def main() -> None:
    """CDS Hooks service for repeat spine imaging in pyogenic spondylodiscitis."""


for _command in (
    serve,
    try_command,
    observation_codes_command,
    client_jwks,
    load_examples_command,
    export_download,
    review_examples,
    report,
    audit_purge,
    replay,
):
    main.add_command(_command)
