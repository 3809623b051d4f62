"""deploy/ and the image's recipe: valid manifests, and the properties the issue asked for.

The Kubernetes manifests are validated against the Kubernetes schemas that
kubernetes-validate ships (offline), every YAML file is linted with yamllint, and the
properties that matter are read from the files: non-root, read-only root, no privilege
escalation, probes, secrets only through ``*_FILE`` files, the shipped nginx config
reused, stop timeouts longer than gunicorn's graceful timeout. The image itself is built
and run by scripts/container-test.sh.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from cds_service.server import GRACEFUL_TIMEOUT_SECONDS
from tests.support.nginx import (
    MOUNTED,
    START_NGINX,
    WRITTEN,
    Started,
    container_env,
    render_as_started,
    start_script,
)

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
COMPOSE = DEPLOY / "compose" / "compose.yaml"
NGINX_CONF = DEPLOY / "nginx" / "spine-cds.conf"
BIN = Path(sys.executable).parent


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def documents() -> list[dict[str, Any]]:
    return [doc for path in MANIFESTS for doc in load_all(path)]


def resources() -> dict[str, dict[str, Any]]:
    """The one resource of each kind (NetworkPolicies: see ``policies``)."""
    return {doc["kind"]: doc for doc in documents() if doc["kind"] != "NetworkPolicy"}


def policies() -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents() if d["kind"] == "NetworkPolicy"}


def test_the_manifests_validate_against_the_kubernetes_schemas() -> None:
    assert len(MANIFESTS) >= 5
    result = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", *map(str, MANIFESTS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") == len(documents())


def test_a_broken_manifest_is_caught(tmp_path: Path) -> None:
    """The validator is not a no-op: a misspelt field fails strict validation."""
    broken = tmp_path / "broken.yaml"
    text = (DEPLOY / "kubernetes" / "pdb.yaml").read_text(encoding="utf-8")
    broken.write_text(text.replace("minAvailable", "minAvailible"), encoding="utf-8")
    result = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0


def test_every_yaml_file_in_deploy_passes_yamllint() -> None:
    result = subprocess.run(
        [str(BIN / "yamllint"), "--strict", "-c", str(DEPLOY / ".yamllint.yaml"), str(DEPLOY)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_several_replicas_behind_a_service_and_a_disruption_budget() -> None:
    found = resources()
    deployment, service, pdb = found["Deployment"], found["Service"], found["PodDisruptionBudget"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["replicas"] >= 2
    assert pdb["spec"]["minAvailable"] < deployment["spec"]["replicas"]
    for selector in (service["spec"]["selector"], pdb["spec"]["selector"]["matchLabels"]):
        assert selector.items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "proxy"  # calls go through nginx


def containers() -> dict[str, dict[str, Any]]:
    pod = resources()["Deployment"]["spec"]["template"]["spec"]
    return {c["name"]: c for c in pod["containers"]}


def test_every_container_is_locked_down_and_sized() -> None:
    pod = resources()["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the image's uid
    assert pod["securityContext"]["fsGroup"] == 10001  # volumes writable by it
    for name, container in containers().items():
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["capabilities"]["drop"] == ["ALL"], name
        assert container["resources"]["requests"]["memory"], name
        assert container["resources"]["limits"]["memory"], name


def test_the_service_probes_liveness_and_readiness_and_has_a_writable_tmp() -> None:
    service = containers()["spine-cds"]
    assert service["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert service["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert "/tmp" in {m["mountPath"] for m in service["volumeMounts"]}


def test_stop_timeouts_leave_gunicorn_its_graceful_timeout() -> None:
    pod = resources()["Deployment"]["spec"]["template"]["spec"]
    pause = int(containers()["spine-cds"]["lifecycle"]["preStop"]["exec"]["command"][1])
    assert pause + GRACEFUL_TIMEOUT_SECONDS < pod["terminationGracePeriodSeconds"]
    grace = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["x-spine-cds"]["stop_grace_period"]
    assert int(grace.removesuffix("s")) > GRACEFUL_TIMEOUT_SECONDS


def test_secrets_reach_the_service_only_as_files() -> None:
    service = containers()["spine-cds"]
    env = {e["name"]: e for e in service["env"]}
    assert env["SPINE_CDS_DATABASE_URL_FILE"]["value"].startswith("/run/secrets/")
    assert env["SPINE_CDS_AUDIT_HASH_KEY_FILE"]["value"].startswith("/run/secrets/")
    settings = resources()["ConfigMap"]["data"]
    assert env["SPINE_CDS_REDIS_URL_FILE"]["value"].startswith("/run/secrets/")
    for secret in ("SPINE_CDS_DATABASE_URL", "SPINE_CDS_AUDIT_HASH_KEY", "SPINE_CDS_REDIS_URL"):
        assert secret not in env and secret not in settings
    assert not any("valueFrom" in e for e in service["env"])  # no secretKeyRef in env
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["x-spine-cds"]
    assert "SPINE_CDS_DATABASE_URL" not in compose["environment"]
    assert compose["environment"]["SPINE_CDS_DATABASE_URL_FILE"].startswith("/run/secrets/")


def test_the_shipped_nginx_config_is_the_proxy_everywhere() -> None:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text(encoding="utf-8"))
    generated = {g["name"]: g["files"] for g in kustomization["configMapGenerator"]}
    assert generated["spine-cds-nginx"] == ["nginx/spine-cds.conf"]
    for resource in kustomization["resources"]:
        assert (DEPLOY / resource).is_file(), resource
    # Every manifest is applied, except the example Secret (made out of band).
    applied = {DEPLOY / resource for resource in kustomization["resources"]}
    assert applied == {p for p in MANIFESTS if p.name != "secret.example.yaml"}
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert (
        "../nginx/spine-cds.conf:/etc/spine-cds-nginx/spine-cds.conf:ro"
        in (compose["x-proxy"]["volumes"])
    )
    mounts = {m["name"]: m["mountPath"] for m in containers()["nginx"]["volumeMounts"]}
    assert mounts["nginx-conf"] == "/etc/spine-cds-nginx"
    # Its upstream is the gunicorn of the same pod (or network namespace) on the
    # service's default port, and it listens on the port the Deployment names "proxy".
    conf = NGINX_CONF.read_text(encoding="utf-8")
    assert re.search(r"server 127\.0\.0\.1:8080;", conf)
    public, internal = nginx_listen_ports()
    ports = {p["name"]: p["containerPort"] for p in containers()["nginx"]["ports"]}
    assert ports == {"proxy": public, "internal": internal}
    services = compose["services"]
    assert {"postgres", "redis"} <= set(services)
    assert sum(1 for s in services.values() if s.get("image") == "localhost/spine-cds:compose") >= 2


def nginx_listen_ports() -> tuple[int, int]:
    """(public, internal) ports of the shipped nginx config's two listeners."""
    conf = NGINX_CONF.read_text(encoding="utf-8")
    ports = [int(p) for p in re.findall(r"^\s*listen (?:127\.0\.0\.1:)?(\d+);", conf, re.MULTILINE)]
    assert len(ports) == 2, ports
    assert re.search(rf"^\s*listen {ports[0]};", conf, re.MULTILINE)  # public: every interface
    assert re.search(rf"listen 127\.0\.0\.1:{ports[1]};\s*# INTERNAL", conf)
    return ports[0], ports[1]


def test_pods_open_the_internal_listener_to_their_network_only_by_its_one_line(
    tmp_path: Path,
) -> None:
    """On a host the internal listener binds 127.0.0.1; the pod and compose, reached from
    outside their network namespace (Prometheus, a published port), run the shipped file
    with that one line turned into `listen 8081;`. Compose changes nothing else: nginx is
    what its clients connect to, so the connection's address is the client's."""
    shipped = NGINX_CONF.read_text(encoding="utf-8")
    _, internal = nginx_listen_ports()
    expected: dict[Started, int] = {"compose": 1, "kubernetes": 2}  # the pod: real_ip too
    for where, lines in expected.items():
        assert start_script(where).rstrip().endswith(START_NGINX), where
        started = render_as_started(where, tmp_path / f"{where}.conf")
        assert started.returncode == 0, (where, started.stderr)
        written = (tmp_path / f"{where}.conf").read_text(encoding="utf-8")
        changed = [
            (old, new)
            for old, new in zip(shipped.splitlines(), written.splitlines(), strict=True)
            if old != new
        ]
        assert len(changed) == lines, (where, changed)
        assert f"listen 127.0.0.1:{internal};" in changed[-1][0]
        assert re.match(rf"\s*listen {internal};\s*# INTERNAL", changed[-1][1]), where
    assert real_ip_directives((tmp_path / "compose.conf").read_text(encoding="utf-8")) == []


REAL_IP_LINE = "# real_ip: none (the connection's address is the client's)"


def real_ip_directives(conf: str) -> list[str]:
    """The lines of ``conf`` that set up the real_ip module (comments aside)."""
    code = (line.split("#", 1)[0].strip() for line in conf.splitlines())
    return [line for line in code if "real_ip" in line]


def public_server(conf: str) -> str:
    """The first server { } block: the public listener."""
    start = conf.index("\nserver {")
    return conf[start : conf.index("\nserver {", start + 1)]


def test_the_pod_believes_x_forwarded_for_from_the_ingress_controller_only(
    tmp_path: Path,
) -> None:
    """Every call reaches the pod through the ingress controller: its start command turns
    the shipped config's one real_ip line into set_real_ip_from INGRESS_ADDRESSES (the
    manifest's default, the pod network), real_ip_header X-Forwarded-For and
    real_ip_recursive on, in the public server only. As shipped, for a host, the line is
    a comment, and nothing else of the file mentions real_ip."""
    shipped = NGINX_CONF.read_text(encoding="utf-8")
    assert shipped.count(REAL_IP_LINE) == 1 and REAL_IP_LINE in public_server(shipped)
    assert real_ip_directives(shipped) == []
    # The default: the pod network of most clusters, private, never everyone.
    default = container_env("kubernetes")["INGRESS_ADDRESSES"].split()
    for block in map(ipaddress.ip_network, default):
        assert block.is_private and block.prefixlen >= 8, block
    assert "INGRESS_ADDRESSES" in (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")

    out = tmp_path / "pod.conf"
    started = render_as_started("kubernetes", out, {"INGRESS_ADDRESSES": "10.42.0.0/16 fd00::/8"})
    assert started.returncode == 0, started.stderr
    written = out.read_text(encoding="utf-8")
    [line] = real_ip_directives(written)
    assert line.split() == [
        "real_ip_header",
        "X-Forwarded-For;",
        "real_ip_recursive",
        "on;",
        "set_real_ip_from",
        "10.42.0.0/16;",
        "set_real_ip_from",
        "fd00::/8;",
    ]
    assert line in public_server(written)  # the internal listener has no limits to key

    # What it refuses to start with: nothing to trust, everyone, or what is not an
    # address (which would otherwise be written into the config).
    refusals = (None, "", "  ", "0.0.0.0/0", "::/0", "0/00", "10.0.0.0/8 ::/0", "10.0.0.1;x")
    for refused in refusals:
        env = {} if refused is None else {"INGRESS_ADDRESSES": refused}
        started = render_as_started("kubernetes", tmp_path / "refused.conf", env)
        assert started.returncode != 0, refused
        assert "INGRESS_ADDRESSES" in started.stderr, (refused, started.stderr)
    # A config whose real_ip line is gone (renamed) stops the pod instead of running
    # without it.
    renamed = tmp_path / "renamed.conf"
    renamed.write_text(shipped.replace(REAL_IP_LINE, "# real_ip: renamed"), encoding="utf-8")
    script = start_script("kubernetes").replace(MOUNTED, str(renamed))
    script = script.replace(WRITTEN, str(tmp_path / "out.conf")).replace(START_NGINX, "exit 0")
    result = subprocess.run(
        ["/bin/sh", "-c", script],
        env={"PATH": "/usr/bin:/bin", "INGRESS_ADDRESSES": "10.0.0.0/8"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0 and "real_ip" in result.stderr, result


def container_port(name: str) -> int:
    return next(
        p["containerPort"] for c in containers().values() for p in c["ports"] if p["name"] == name
    )


def url_port(url: str, default: int) -> int:
    from urllib.parse import urlsplit

    return urlsplit(url).port or default


def secret_example() -> dict[str, str]:
    data: dict[str, str] = resources()["Secret"]["stringData"]
    return data


# --- network policy ---------------------------------------------------------------------


def _namespaces(rule: dict[str, Any]) -> list[str]:
    return [
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for peer in rule["from"]
    ]


def test_the_service_takes_calls_from_the_ingress_and_scrapes_from_monitoring_only() -> None:
    policy = policies()["spine-cds"]["spec"]
    labels = resources()["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    admitted: dict[int, list[str]] = {}
    for rule in policy["ingress"]:
        assert rule["from"] and rule["ports"], rule  # an empty list would admit everyone
        for peer in rule["from"]:
            assert set(peer) == {"namespaceSelector"} and peer["namespaceSelector"], peer
        for port in rule["ports"]:
            number = container_port(port["port"]) if isinstance(port["port"], str) else port["port"]
            admitted.setdefault(number, []).extend(_namespaces(rule))
    public, internal = nginx_listen_ports()
    assert admitted == {public: ["ingress-nginx"], internal: ["monitoring"]}
    assert container_port("service") not in admitted  # gunicorn: loopback and the kubelet only


def test_the_service_reaches_only_dns_the_stores_and_https() -> None:
    policy = policies()["spine-cds"]["spec"]
    allowed: set[tuple[str, int]] = set()
    for rule in policy["egress"]:
        assert rule["to"] and rule["ports"], rule  # an empty list would allow everything
        allowed |= {(p["protocol"], p["port"]) for p in rule["ports"]}
    secrets = secret_example()
    postgres = url_port(secrets["database-url"], 5432)
    redis = url_port(secrets["redis-url"], 6379)
    assert allowed == {("UDP", 53), ("TCP", 53), ("TCP", postgres), ("TCP", redis), ("TCP", 443)}
    by_port = {rule["ports"][0]["port"]: rule["to"] for rule in policy["egress"]}
    assert by_port[postgres] == [{"podSelector": {"matchLabels": STORE_LABELS["postgres"]}}]
    assert by_port[redis] == [{"podSelector": {"matchLabels": STORE_LABELS["redis"]}}]
    assert [set(peer) for peer in by_port[443]] == [{"ipBlock"}]  # named addresses, not all
    assert by_port[53][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}


STORE_LABELS = {
    "postgres": {"app.kubernetes.io/name": "postgres"},
    "redis": {"app.kubernetes.io/name": "redis"},
}


@pytest.mark.parametrize("store", ["postgres", "redis"])
def test_postgres_and_redis_take_connections_from_the_service_only(store: str) -> None:
    policy = policies()[f"spine-cds-{store}"]["spec"]
    labels = resources()["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"] == STORE_LABELS[store]
    assert policy["policyTypes"] == ["Ingress"]
    [rule] = policy["ingress"]
    [peer] = rule["from"]
    assert set(peer) == {"podSelector"}
    assert peer["podSelector"]["matchLabels"].items() <= labels.items()
    url = secret_example()["database-url" if store == "postgres" else "redis-url"]
    assert [p["port"] for p in rule["ports"]] == [url_port(url, 0)]


# --- images, stores, storage ------------------------------------------------------------

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def test_every_image_is_deployed_by_digest() -> None:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text(encoding="utf-8"))
    pinned = {image["name"]: image for image in kustomization["images"]}
    for name, container in containers().items():
        image = container["image"]
        # No tag or digest in the Deployment: the kustomization's images: list is the one
        # place that says which build runs, and it says it by digest.
        assert ":" not in image.rsplit("/", 1)[-1] and "@" not in image, (name, image)
        assert DIGEST.match(pinned[image]["digest"]), (name, pinned[image])
        assert "newTag" not in pinned[image], (name, pinned[image])
    assert set(pinned) == {c["image"] for c in containers().values()}
    assert "kustomize edit set image" in (ROOT / "docs" / "deployment.md").read_text("utf-8")


def test_redis_needs_a_password_and_speaks_tls_and_postgres_checks_its_certificate() -> None:
    from urllib.parse import parse_qs, urlsplit

    secrets = secret_example()
    redis = urlsplit(secrets["redis-url"])
    assert redis.scheme == "rediss" and redis.password
    database = urlsplit(secrets["database-url"])
    query = {k: v[0] for k, v in parse_qs(database.query).items()}
    assert query["sslmode"] == "verify-full"
    mount = containers()["spine-cds"]["volumeMounts"]
    secrets_dir = next(m["mountPath"] for m in mount if m["name"] == "secrets")
    root_cert = Path(query["sslrootcert"])
    assert str(root_cert.parent) == secrets_dir and root_cert.name in secrets
    assert "REDIS_URL" not in str(resources()["ConfigMap"]["data"].keys())


def test_every_emptydir_and_container_has_a_storage_limit() -> None:
    pod = resources()["Deployment"]["spec"]["template"]["spec"]
    empty_dirs = [v for v in pod["volumes"] if "emptyDir" in v]
    assert empty_dirs
    for volume in empty_dirs:
        assert volume["emptyDir"].get("sizeLimit"), volume["name"]
    for name, container in containers().items():
        assert container["resources"]["limits"].get("ephemeral-storage"), name
        assert container["resources"]["requests"].get("ephemeral-storage"), name


# --- the image's recipe -------------------------------------------------------------------


def requirement_name(text: str) -> str:
    return (
        re.split(r"[\[<>=!~;\s]", text, maxsplit=1)[0].lower().replace("_", "-").replace(".", "-")
    )


def locked() -> dict[str, str]:
    pins = re.findall(
        r"^([A-Za-z0-9_.-]+)==(\S+) \\$",
        (ROOT / "requirements.lock").read_text(encoding="utf-8"),
        re.MULTILINE,
    )
    return {requirement_name(name): version for name, version in pins}


def test_the_lock_pins_every_dependency_of_pyproject_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins = locked()
    missing = [d for d in project["dependencies"] if requirement_name(d) not in pins]
    assert not missing, f"requirements.lock lacks {missing}: regenerate it (see its header)"
    for lock in ("requirements.lock", "requirements-build.lock"):
        entries = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / lock).read_text(encoding="utf-8"))
        for entry in entries:
            if "==" in entry:
                assert "--hash=sha256:" in entry, f"{lock}: {entry.splitlines()[0]}"


def test_the_lock_agrees_with_the_version_ranges_of_pyproject() -> None:
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins = locked()
    for dependency in project["dependencies"]:
        requirement = Requirement(dependency)
        version = pins[requirement_name(dependency)]
        assert requirement.specifier.contains(version), f"{dependency}: locked {version}"


def test_the_dockerfile_installs_locked_dependencies_before_the_source() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^ARG BASE_IMAGE=\S+@sha256:[0-9a-f]{64}$", text, re.MULTILINE)
    assert "--upgrade pip" not in text
    assert text.count("\nFROM ") == 2  # builder and runtime
    lock = text.index("--require-hashes --no-deps --only-binary=:all:")
    assert lock < text.index("COPY cds_service")
    runtime = text[text.index("AS runtime") :]
    assert "COPY --from=builder /opt/spine-cds" in runtime and "COPY cds_service" not in runtime
    assert re.search(r"^USER 10001:10001$", runtime, re.MULTILINE)
    assert "STOPSIGNAL SIGTERM" in runtime and "HEALTHCHECK" in runtime
    assert "127.0.0.1:8080" not in text  # the health check follows the settings


def test_the_build_context_is_only_what_the_image_needs() -> None:
    lines = [
        line
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "*"  # everything out, then let back in
    allowed = {line[1:] for line in lines if line.startswith("!")}
    assert allowed >= {"pyproject.toml", "requirements.lock", "cds_service", "fhir_mappers"}
    assert not allowed & {".venv", "tests", "smart_app", ".git", "node_modules", "bench"}


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_container_test_script_is_valid_bash_and_runs_in_ci() -> None:
    script = ROOT / "scripts" / "container-test.sh"
    subprocess.run(["bash", "-n", str(script)], check=True, timeout=30)
    assert "bash scripts/container-test.sh" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
