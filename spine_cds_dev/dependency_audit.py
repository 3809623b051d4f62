"""Read what pip-audit and npm audit said, and never take "nothing audited" for "clean".

scripts/audit-deps.sh runs both tools and hands their JSON output here. Both can report
success without having looked at anything: pip-audit printed "No known vulnerabilities
found" while it skipped every pinned package (its advisory source, PyPI's JSON API, was
not reachable), and ``npm audit --omit=dev`` counted 0 vulnerabilities because no package
was a runtime dependency. So each report is checked against what should have been
audited, read from the lock files: every pin of requirements.lock, and every package of
smart_app/package-lock.json that is not dev-only (what ships in the built trend app).

Verdicts: ``clean`` (all of them audited, nothing found), ``vulnerable`` (a finding,
whatever else happened), ``not-run`` (a tool missing, its advisory database not reached,
packages skipped, fewer audited than locked). Exit status: 1 when vulnerable; when the
audit could not run, 2 with ``--strict`` and 0 without, after saying "audit could not
run"; 0 when clean. Only a clean result prints "no known vulnerabilities".
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

State = Literal["clean", "vulnerable", "not-run"]

EXIT_CLEAN = 0
EXIT_VULNERABLE = 1
EXIT_NOT_RUN_STRICT = 2


@dataclass(frozen=True)
class Verdict:
    """What one tool's report shows, for one ecosystem."""

    ecosystem: str
    state: State
    audited: int
    expected: int
    findings: tuple[str, ...] = ()
    reason: str = ""


def locked_python_packages(requirements_lock: str) -> set[str]:
    """The names pinned in a requirements.lock (``name==version \\`` lines)."""
    found = re.findall(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)==\S+", requirements_lock, re.MULTILINE)
    return {re.sub(r"[-_.]+", "-", name).lower() for name in found}


def shipped_js_packages(package_lock: dict[str, Any]) -> set[str]:
    """The registry packages of an npm lock (v2/v3) that are not dev-only: what ships.

    Local packages (a ``file:`` stub, a link) have no advisories and no ``integrity``.
    """
    names = set()
    for path, entry in package_lock.get("packages", {}).items():
        if not path or entry.get("dev") or "integrity" not in entry:
            continue
        names.add(path.rsplit("node_modules/", 1)[-1])
    return names


def _parse(output: str) -> Any:
    try:
        return json.loads(output)
    except ValueError:
        return None


def judge_pip_audit(output: str, returncode: int, expected: set[str], stderr: str = "") -> Verdict:
    """pip-audit's ``-f json`` report on the pinned packages."""
    report = _parse(output)
    if not isinstance(report, dict) or not isinstance(report.get("dependencies"), list):
        why = _last_line(stderr) or f"pip-audit exited {returncode} without a JSON report"
        return Verdict("python", "not-run", 0, len(expected), reason=why)
    audited: set[str] = set()
    skipped: list[str] = []
    findings: list[str] = []
    for dependency in report["dependencies"]:
        name = re.sub(r"[-_.]+", "-", str(dependency.get("name", ""))).lower()
        if "skip_reason" in dependency:
            skipped.append(f"{name}: {dependency['skip_reason']}")
            continue
        audited.add(name)
        for vuln in dependency.get("vulns", []):
            fixes = ", ".join(vuln.get("fix_versions", [])) or "no fixed version"
            findings.append(f"{name} {dependency.get('version')}: {vuln.get('id')} ({fixes})")
    return _verdict("python", audited, expected, findings, skipped)


def judge_npm_audit(output: str, returncode: int, expected: set[str], stderr: str = "") -> Verdict:
    """``npm audit --omit=dev --json``: the packages that ship."""
    report = _parse(output)
    if not isinstance(report, dict) or "error" in report or "metadata" not in report:
        error = report.get("error") if isinstance(report, dict) else None
        summary = error.get("summary") if isinstance(error, dict) else None
        message = report.get("message") if isinstance(report, dict) else None
        why = (
            summary
            or message
            or _last_line(stderr)
            or f"npm audit exited {returncode} without a report"
        )
        return Verdict("javascript", "not-run", 0, len(expected), reason=why)
    counts = report["metadata"].get("dependencies", {})
    # npm counts the project itself among the production dependencies.
    audited_count = max(int(counts.get("prod", 0)) - 1, 0)
    findings = [
        f"{name}: {entry.get('severity')} ({entry.get('range', '')})"
        for name, entry in sorted(report.get("vulnerabilities", {}).items())
    ]
    if findings:
        return Verdict("javascript", "vulnerable", audited_count, len(expected), tuple(findings))
    if audited_count < len(expected) or not expected:
        why = (
            f"{audited_count} runtime packages audited, {len(expected)} in the lock"
            if expected
            else "no runtime package in the lock: what ships would not be audited"
        )
        return Verdict("javascript", "not-run", audited_count, len(expected), reason=why)
    return Verdict("javascript", "clean", audited_count, len(expected))


def _verdict(
    ecosystem: str,
    audited: set[str],
    expected: set[str],
    findings: list[str],
    skipped: list[str],
) -> Verdict:
    if findings:
        return Verdict(ecosystem, "vulnerable", len(audited), len(expected), tuple(findings))
    missing = sorted(expected - audited)
    if skipped or missing or not audited:
        if skipped:
            why = f"{len(skipped)} of {len(expected)} packages skipped, e.g. {skipped[0]}"
        elif missing:
            why = f"not audited: {', '.join(missing[:5])}"
        else:
            why = "nothing was audited"
        return Verdict(ecosystem, "not-run", len(audited), len(expected), reason=why)
    return Verdict(ecosystem, "clean", len(audited), len(expected))


def _last_line(text: str) -> str:
    """The last line of a tool's error output that says something (npm ends with the
    path of its log file, which does not)."""
    lines = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and "complete log of this run" not in line
    ]
    return lines[-1][:300] if lines else ""


def summarise(verdicts: Sequence[Verdict], strict: bool) -> tuple[int, list[str]]:
    """The exit status and the lines to print."""
    lines = []
    for v in verdicts:
        if v.state == "clean":
            lines.append(f"{v.ecosystem}: {v.audited} of {v.expected} packages audited, none known")
        elif v.state == "vulnerable":
            lines.append(f"{v.ecosystem}: KNOWN VULNERABILITIES")
            lines += [f"  {finding}" for finding in v.findings]
        else:
            lines.append(f"{v.ecosystem}: audit could not run: {v.reason}")
    states = {v.state for v in verdicts}
    if "vulnerable" in states:
        lines.append("dependency audit: known vulnerabilities (above)")
        return EXIT_VULNERABLE, lines
    if "not-run" in states:
        lines.append(
            "dependency audit: audit could not run (no result, not a clean one)"
            + ("" if strict else "; --strict makes this an error")
        )
        return (EXIT_NOT_RUN_STRICT if strict else EXIT_CLEAN), lines
    lines.append("dependency audit: no known vulnerabilities in any audited package")
    return EXIT_CLEAN, lines


def _read(path: str | None) -> str:
    if not path:
        return ""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError:
        return ""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--requirements", required=True, help="requirements.lock")
    parser.add_argument("--package-lock", required=True, help="smart_app/package-lock.json")
    parser.add_argument("--pip-json", help="pip-audit's -f json output")
    parser.add_argument("--pip-rc", type=int, default=0)
    parser.add_argument("--pip-stderr")
    parser.add_argument("--npm-json", help="npm audit --omit=dev --json output")
    parser.add_argument("--npm-rc", type=int, default=0)
    parser.add_argument("--npm-stderr")
    parser.add_argument("--strict", action="store_true", help="exit 2 when it could not run")
    args = parser.parse_args(argv)
    python_expected = locked_python_packages(_read(args.requirements))
    lock = _parse(_read(args.package_lock))
    js_expected = shipped_js_packages(lock if isinstance(lock, dict) else {})
    verdicts = [
        judge_pip_audit(_read(args.pip_json), args.pip_rc, python_expected, _read(args.pip_stderr)),
        judge_npm_audit(_read(args.npm_json), args.npm_rc, js_expected, _read(args.npm_stderr)),
    ]
    status, lines = summarise(verdicts, args.strict)
    print("\n".join(lines))
    return status


if __name__ == "__main__":
    sys.exit(main())
