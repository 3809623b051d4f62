"""Where a setting's value comes from, and how a refused one is explained.

The two conventions of the places the service runs (``settings.py``'s docstring):
``SPINE_CDS_<NAME>_FILE`` variables read from a file, and the service-link variables
Kubernetes injects, recognised and ignored. And the wording of pydantic's findings, each
naming the value as it was written, never quoting a secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pydantic import ValidationError

MAX_SETTING_FILE_BYTES = 64 * 1024


class SettingsError(ValueError):
    """A setting that cannot be used; the message names it and says what was expected."""


# Kubernetes service-link variables, after the prefix (a Service "spine-cds" or
# "spine-cds-db"): <NAME>_SERVICE_HOST, <NAME>_SERVICE_PORT[_<port name>], <NAME>_PORT and
# <NAME>_PORT_<n>_<PROTO>[_PROTO|_PORT|_ADDR]. Only the bare _PORT collides with a
# setting; its value (tcp://10.96.0.12:8080) tells the two apart.
_K8S_LINK_NAME = re.compile(
    r"^(?:[A-Z0-9_]*_)?(?:SERVICE_HOST|SERVICE_PORT(?:_[A-Z0-9_]+)?"
    r"|PORT_[0-9]+_(?:TCP|UDP|SCTP)(?:_PROTO|_PORT|_ADDR)?)$"
)
_K8S_BARE_PORT_NAME = re.compile(r"^(?:[A-Z0-9_]*_)?PORT$")
_K8S_LINK_VALUE = re.compile(r"^(?:tcp|udp|sctp)://[0-9A-Fa-f.:\[\]]+:[0-9]+$")


def kubernetes_service_link(name: str, value: str) -> bool:
    """Whether ``name`` (after the ``SPINE_CDS_`` prefix) = ``value`` is a variable that
    Kubernetes injects for a Service, rather than a setting someone wrote."""
    if _K8S_LINK_NAME.match(name):
        return True
    return bool(_K8S_BARE_PORT_NAME.match(name) and _K8S_LINK_VALUE.match(value.strip()))


def read_setting_file(variable: str, path: str) -> str:
    """The value of a ``SPINE_CDS_<NAME>_FILE`` variable: the file's text, less the
    trailing newline an editor or ``kubectl create secret --from-file`` leaves."""
    where = f"environment variable {variable}"
    if not path.strip():
        # Not "not set", as an empty SPINE_CDS_<NAME> is: a _FILE variable names a secret,
        # and an empty one is a template that failed to fill in its path. Taken as not
        # set, an empty SPINE_CDS_DATABASE_URL_FILE would start every instance on its own
        # SQLite file, splitting the audit without a word.
        raise SettingsError(
            f"{where}: empty, expected a file path (an empty _FILE variable is refused, not "
            "taken as not set: name the secret's file, or unset the variable)"
        )
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_SETTING_FILE_BYTES + 1)
        if len(data) > MAX_SETTING_FILE_BYTES:
            raise SettingsError(f"{where}: {path} is larger than {MAX_SETTING_FILE_BYTES} bytes")
        return data.decode("utf-8").rstrip("\r\n")
    except OSError as exc:
        raise SettingsError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{where}: {path} is not UTF-8 text") from None


# What a setting's value should have been, by the start of pydantic's error type.
_EXPECTED = {
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean (true/false)",
    "string": "a string",
    "tuple": "a list of strings",
}
_BOUND = {"greater_than_equal": "at least {ge}", "greater_than": "greater than {gt}"}


# Settings whose value is never quoted in an error: it may be, or hold, a password.
_SECRET_SETTINGS = frozenset({"database_url", "redis_url", "audit_hash_key"})


def refusal(
    error: ValidationError,
    origin: Mapping[tuple[str, ...], str],
    unquoted: frozenset[tuple[str, ...]] = frozenset(),
) -> SettingsError:
    """pydantic's findings, each naming the value as it was written: ``origin`` maps a
    setting (or ``("rules", name)``) to where its value came from. A value read from a
    ``_FILE`` variable's file or of a secret setting (``unquoted``) is not quoted: the
    file may be another setting's secret, mounted under the wrong name."""
    problems: list[str] = []
    unknown: list[str] = []
    for found in error.errors():
        loc = tuple(part for part in found["loc"] if isinstance(part, str))
        where = origin.get(loc, ".".join(loc))
        hidden = loc[:1] in unquoted or loc[:1] in {(n,) for n in _SECRET_SETTINGS}
        got = " (the value is not shown: read from a file, or a secret)" if hidden else ""
        if found["type"] == "unexpected_keyword_argument":  # a threshold RuleSettings lacks
            unknown.append(where)
        elif found["type"] == "value_error":  # RuleSettings' or Settings' own range checks
            problems.append(": ".join([*loc, str(found["ctx"]["error"])]))
        elif found["type"] in _BOUND:
            problems.append(f"{loc[0]} must be " + _BOUND[found["type"]].format(**found["ctx"]))
        elif found["type"] == "literal_error":  # one of a few words (log_format, ...)
            got = got or f", got {found['input']!r}"
            choices = ", ".join(re.findall(r"'([^']*)'", found["ctx"]["expected"]))
            problems.append(f"{where}: expected one of {choices}{got}")
        elif len(loc) < len(found["loc"]):  # an element of a list
            got = got or f", got {found['input']!r}"
            problems.append(f"{where}: expected a list of strings{got}")
        elif expected := _EXPECTED.get(found["type"].split("_")[0]):
            got = got or f", got {found['input']!r}"
            problems.append(f"{where}: expected {expected}{got}")
        else:
            problems.append(f"{where}: {found['msg']}")
    if unknown:
        problems.insert(0, f"unknown rule setting(s): {', '.join(sorted(unknown))}")
    return SettingsError("; ".join(problems))
