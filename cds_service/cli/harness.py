"""``demo`` and ``fhir-test-server``: the development harness's commands, offered by
``spine-cds`` when the harness is there.

The harness (``spine_cds_dev``) sits next to ``cds_service`` in a source checkout; the
wheel does not ship it. ``spine-cds`` lists both commands either way, and loads the
harness only when one of them runs: no other command, and never the server, imports it.
Without the harness, each says where it runs. This is the one module of
``cds_service`` that names the harness, and it does so only inside a function
(tests/test_layering.py holds it to that).
"""

from __future__ import annotations

import click

#: The harness's commands, with what ``spine-cds --help`` says of each.
HARNESS_COMMANDS = {
    "demo": "Run everything on this machine and show each example patient's card.",
    "fhir-test-server": "Run the project's FHIR R4 test server until Ctrl-C.",
}
_UNAVAILABLE = (
    "`spine-cds {name}` is part of the development harness, which runs from a source "
    "checkout of spine-cds (it is not installed with the package). Clone the repository "
    "and run `bash scripts/{name}.sh` there."
)


def harness_command(name: str) -> click.Command:
    """The harness's command ``name``, or one that says where it runs."""
    try:
        from spine_cds_dev.commands import COMMANDS
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] != "spine_cds_dev":
            raise  # the harness is there but lacks something: say so, do not hide it
        return _unavailable(name)
    return COMMANDS[name]


def _unavailable(name: str) -> click.Command:
    @click.command(
        name,
        help=HARNESS_COMMANDS[name] + " (From a source checkout only.)",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )
    def unavailable() -> None:
        raise click.UsageError(_UNAVAILABLE.format(name=name))

    return unavailable
