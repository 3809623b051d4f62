"""scripts/audit-deps.sh never reports "no known vulnerabilities" when nothing was audited.

Offline: the advisory databases are network services, so these tests feed the checker
(spine_cds_dev.dependency_audit) the real reports of runs that audited nothing, captured
where the advisory sources could not be reached (tests/data/dependency_audit/: pip-audit
skipping every pinned package yet printing "No known vulnerabilities found"; npm audit
--omit=dev counting 0 because nothing was a runtime dependency; npm's audit endpoint
refusing the request), and reports shaped like a clean and a vulnerable run. The script
itself is run with its two tools replaced by commands that fail, as a missing tool would.

And the trend app's packages are classified as what they are: everything esbuild bundles
into the shipped app.js and launch.js is a runtime dependency in package.json and the lock.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from spine_cds_dev.dependency_audit import (
    EXIT_CLEAN,
    EXIT_NOT_RUN_STRICT,
    EXIT_VULNERABLE,
    judge_npm_audit,
    judge_pip_audit,
    locked_python_packages,
    main,
    shipped_js_packages,
    summarise,
)
from tests.support.trend_app_packages import install_trend_app_packages

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "dependency_audit"
APP_DIR = ROOT / "smart_app"
CLEAN_WORDS = "no known vulnerabilities"


def python_pins() -> set[str]:
    return locked_python_packages((ROOT / "requirements.lock").read_text(encoding="utf-8"))


def package_lock() -> dict[str, Any]:
    lock: dict[str, Any] = json.loads((APP_DIR / "package-lock.json").read_text("utf-8"))
    return lock


def test_pip_audit_skipping_every_package_is_not_a_clean_result() -> None:
    report = (DATA / "pip-audit-all-skipped.json").read_text(encoding="utf-8")
    verdict = judge_pip_audit(report, 0, python_pins())
    assert verdict.state == "not-run"
    assert verdict.audited == 0 and verdict.expected == len(python_pins()) > 0
    assert "skipped" in verdict.reason and "could not be audited" in verdict.reason


def test_npm_audit_of_a_lock_without_runtime_packages_is_not_a_clean_result() -> None:
    report = (DATA / "npm-audit-omit-dev-no-runtime-deps.json").read_text(encoding="utf-8")
    # The lock as it was: every package dev-only, so --omit=dev audited nothing.
    all_dev = package_lock()
    for path, entry in all_dev["packages"].items():
        if path:
            entry["dev"] = True
    verdict = judge_npm_audit(report, 0, shipped_js_packages(all_dev))
    assert verdict.state == "not-run" and "no runtime package" in verdict.reason
    # Against today's lock the same report audited 0 of the packages that ship.
    verdict = judge_npm_audit(report, 0, shipped_js_packages(package_lock()))
    assert verdict.state == "not-run" and verdict.audited == 0 and verdict.expected > 0


def test_an_unreachable_audit_endpoint_is_not_a_clean_result() -> None:
    report = (DATA / "npm-audit-endpoint-error.json").read_text(encoding="utf-8")
    verdict = judge_npm_audit(report, 1, shipped_js_packages(package_lock()))
    assert verdict.state == "not-run" and "405" in verdict.reason
    assert judge_pip_audit("", 1, python_pins(), "ConnectionError: ...").state == "not-run"


def _clean_pip_report(names: set[str]) -> str:
    return json.dumps(
        {"dependencies": [{"name": n, "version": "1.0", "vulns": []} for n in sorted(names)]}
    )


def _npm_report(prod: int, vulnerabilities: dict[str, Any] | None = None) -> str:
    return json.dumps(
        {
            "auditReportVersion": 2,
            "vulnerabilities": vulnerabilities or {},
            "metadata": {"dependencies": {"prod": prod, "dev": 3, "total": prod + 3}},
        }
    )


def test_only_a_complete_audit_is_clean() -> None:
    pins = python_pins()
    shipped = shipped_js_packages(package_lock())
    assert judge_pip_audit(_clean_pip_report(pins), 0, pins).state == "clean"
    # One pinned package missing from the report: not clean.
    fewer = judge_pip_audit(_clean_pip_report(set(sorted(pins)[1:])), 0, pins)
    assert fewer.state == "not-run" and sorted(pins)[0] in fewer.reason
    assert judge_npm_audit(_npm_report(len(shipped) + 1), 0, shipped).state == "clean"
    assert judge_npm_audit(_npm_report(len(shipped)), 0, shipped).state == "not-run"


def test_a_finding_is_reported_whatever_else_happened() -> None:
    pins = python_pins()
    name = sorted(pins)[0]
    report = json.loads(_clean_pip_report(pins))
    report["dependencies"][0]["vulns"] = [{"id": "PYSEC-0000-1", "fix_versions": ["9.9"]}]
    report["dependencies"].append({"name": "other", "skip_reason": "not found"})
    verdict = judge_pip_audit(json.dumps(report), 1, pins)
    assert verdict.state == "vulnerable" and verdict.findings == (
        f"{name} 1.0: PYSEC-0000-1 (9.9)",
    )
    npm = judge_npm_audit(
        _npm_report(2, {"jose": {"severity": "high", "range": "<4.15.5"}}), 1, {"jose"}
    )
    status, lines = summarise([verdict, npm], strict=False)
    assert status == EXIT_VULNERABLE
    assert "  jose: high (<4.15.5)" in lines


def test_could_not_run_says_so_and_fails_only_when_strict() -> None:
    report = (DATA / "pip-audit-all-skipped.json").read_text(encoding="utf-8")
    verdicts = [judge_pip_audit(report, 0, python_pins())]
    status, lines = summarise(verdicts, strict=False)
    assert status == EXIT_CLEAN and "audit could not run" in lines[-1]
    assert not any(CLEAN_WORDS in line for line in lines)
    status, lines = summarise(verdicts, strict=True)
    assert status == EXIT_NOT_RUN_STRICT and "audit could not run" in lines[-1]


def test_the_checker_reads_the_lock_files_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean = tmp_path / "pip.json"
    clean.write_text(_clean_pip_report(python_pins()), encoding="utf-8")
    npm = tmp_path / "npm.json"
    npm.write_text(_npm_report(len(shipped_js_packages(package_lock())) + 1), encoding="utf-8")
    common = ["--requirements", str(ROOT / "requirements.lock")]
    common += ["--package-lock", str(APP_DIR / "package-lock.json"), "--strict"]
    assert main([*common, "--pip-json", str(clean), "--npm-json", str(npm)]) == EXIT_CLEAN
    assert CLEAN_WORDS in capsys.readouterr().out
    skipped = str(DATA / "pip-audit-all-skipped.json")
    assert main([*common, "--pip-json", skipped, "--npm-json", str(npm)]) == EXIT_NOT_RUN_STRICT
    out = capsys.readouterr().out
    assert "python: audit could not run" in out and CLEAN_WORDS not in out


@pytest.mark.parametrize(("flag", "expected"), [((), 0), (("--strict",), 2)])
def test_the_script_with_its_tools_failing_says_audit_could_not_run(
    flag: tuple[str, ...], expected: int
) -> None:
    env = {
        **os.environ,
        "AUDIT_DEPS_PIP_AUDIT": "false",
        "AUDIT_DEPS_NPM": "false",
        "PYTHON": sys.executable,
    }
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "audit-deps.sh"), *flag],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == expected, done.stdout + done.stderr
    assert "python: audit could not run" in done.stdout
    assert "javascript: audit could not run" in done.stdout
    assert CLEAN_WORDS not in done.stdout


# --- what ships in the trend app -----------------------------------------------------------

BUNDLED_PACKAGES = r"""
import { build } from 'esbuild';
const result = await build({
  entryPoints: ['src/app.js', 'src/launch.js'], bundle: true, write: false,
  outdir: 'unused', platform: 'browser', format: 'iife', metafile: true, logLevel: 'error',
  // as build.mjs: fhirclient's build without polyfills
  define: { FHIRCLIENT_PURE: 'true', 'process.env.NODE_ENV': '"production"' },
});
const names = new Set();
for (const input of Object.keys(result.metafile.inputs)) {
  const match = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//g);
  if (match) names.add(match[match.length - 1].slice('node_modules/'.length, -1));
}
process.stdout.write(JSON.stringify([...names].sort()));
"""


def test_every_package_bundled_into_the_trend_app_is_a_runtime_dependency() -> None:
    install_trend_app_packages()
    node = shutil.which("node")
    assert node is not None, "node is needed to ask esbuild what the trend app bundles"
    done = subprocess.run(
        [node, "--input-type=module", "-e", BUNDLED_PACKAGES],
        cwd=APP_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    bundled = set(json.loads(done.stdout))
    assert {"fhirclient", "chart.js"} <= bundled, bundled
    lock = package_lock()
    shipped = shipped_js_packages(lock)
    stubbed = {p.rsplit("node_modules/", 1)[-1] for p, e in lock["packages"].items() if "link" in e}
    assert bundled - stubbed <= shipped, sorted(bundled - stubbed - shipped)
    manifest = json.loads((APP_DIR / "package.json").read_text(encoding="utf-8"))
    root = lock["packages"][""]
    assert manifest["dependencies"] == root["dependencies"]  # the lock is of this manifest
    assert manifest["devDependencies"] == root["devDependencies"]
    assert set(manifest["dependencies"]) <= bundled  # nothing listed that does not ship
    assert "esbuild" in manifest["devDependencies"] and "esbuild" not in bundled
