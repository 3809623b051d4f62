"""Two service instances behave as one: shared PostgreSQL and Redis, real gunicorn.

Each instance is a real `spine-cds serve` (gunicorn, 2 workers) in secure mode; both
point at the same throwaway PostgreSQL database and Redis server on 127.0.0.1.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jwt
import psycopg
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from spine_cds_dev.service_process import ServiceProcess
from tests.builders import EMPTY_PREFETCH, SELECT_ID, hook_request, service_request
from tests.support.audit_wait import eventually
from tests.support.jwks_server import JwksServer
from tests.support.pg_server import running_postgres
from tests.support.redis_server import running_redis

pytestmark = pytest.mark.integration
ISS = "https://ehr.example.org"
BASE = "https://cds.example.org"  # public_base_url: both instances sit behind one name


class Client:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP384R1())
        self.kid = uuid.uuid4().hex
        self.jwk = {
            **ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True),
            "kid": self.kid,
            "alg": "ES384",
        }

    def token(self, path: str) -> str:
        now = int(time.time())
        claims = {
            "iss": ISS,
            "aud": BASE + path,
            "iat": now,
            "exp": now + 120,
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(claims, self.key, algorithm="ES384", headers={"kid": self.kid})


def test_two_instances_share_replay_cache_and_feedback(tmp_path: Path) -> None:
    client = Client()
    with running_postgres() as pg, running_redis() as redis_url, JwksServer() as jwks:
        jwks.publish({"keys": [client.jwk]})
        clients_file = tmp_path / "clients.json"
        clients_file.write_text(json.dumps([{"iss": ISS, "jwks_url": jwks.url()}]))
        database_url = pg.new_database()
        env = {
            "SPINE_CDS_DATABASE_URL": database_url,
            "SPINE_CDS_REDIS_URL": redis_url,
            "SPINE_CDS_TRUSTED_CLIENTS_FILE": str(clients_file),
            "SPINE_CDS_PUBLIC_BASE_URL": BASE,
            # one key on every instance, so that their patient hashes agree
            "SPINE_CDS_AUDIT_HASH_KEY": secrets.token_hex(32),
        }
        first = ServiceProcess(
            env={**env, "SPINE_CDS_DATABASE_PATH": str(tmp_path / "a.db")},
            args=(),
            log_path=tmp_path / "a.log",
        )
        second = ServiceProcess(
            env={**env, "SPINE_CDS_DATABASE_PATH": str(tmp_path / "b.db")},
            args=(),
            log_path=tmp_path / "b.log",
        )
        with first, second:
            hook_path = f"/cds-services/{SELECT_ID}"
            body = hook_request("order-select", [service_request("o1")], prefetch=EMPTY_PREFETCH)

            # A jti used at the first instance is refused by the second (and by the first).
            token = client.token(hook_path)
            headers = {"Authorization": f"Bearer {token}"}
            assert (
                requests.post(
                    first.url + hook_path, json=body, headers=headers, timeout=10
                ).status_code
                == 200
            )
            assert (
                requests.post(
                    second.url + hook_path, json=body, headers=headers, timeout=10
                ).status_code
                == 401
            )
            assert (
                requests.post(
                    first.url + hook_path, json=body, headers=headers, timeout=10
                ).status_code
                == 401
            )

            # Concurrent feedback from both instances, with overlap: nothing lost, no duplicate.
            feedback_path = f"{hook_path}/feedback"
            entries = [
                {
                    "card": str(uuid.uuid4()),
                    "outcome": "overridden",
                    "outcomeTimestamp": f"2026-11-26T10:{i // 60:02d}:{i % 60:02d}Z",
                }
                for i in range(60)
            ]
            # Feedback is taken only on cards shown to the client: these were (as the
            # audit records a card shown by either instance).
            with psycopg.connect(database_url) as conn:
                for e in entries:
                    conn.execute(
                        "INSERT INTO audit_cards (card_uuid, client, service_id, received_at)"
                        " VALUES (%s, %s, %s, now())",
                        (e["card"], ISS, SELECT_ID),
                    )

            def send(args: tuple[ServiceProcess, dict[str, Any]]) -> dict[str, Any]:
                service, entry = args
                response = requests.post(
                    service.url + feedback_path,
                    json={"feedback": [entry]},
                    timeout=20,
                    headers={"Authorization": f"Bearer {client.token(feedback_path)}"},
                )
                assert response.status_code == 200, response.text
                result: dict[str, Any] = response.json()
                return result

            # every entry goes to both instances at once
            jobs = [(svc, e) for e in entries for svc in (first, second)]
            with ThreadPoolExecutor(max_workers=8) as pool:
                results = list(pool.map(send, jobs))
            assert sum(r["stored"] for r in results) == len(entries)
            assert sum(r["duplicates"] for r in results) == len(entries)

            # both instances audited into the same database
            assert (
                requests.post(
                    second.url + hook_path,
                    json=body,
                    timeout=10,
                    headers={"Authorization": f"Bearer {client.token(hook_path)}"},
                ).status_code
                == 200
            )

        def audit_by_status() -> dict[int, int]:
            with psycopg.connect(database_url) as conn:
                query = "SELECT status, count(*) FROM audit_log GROUP BY status"
                return dict(conn.execute(query).fetchall())

        audited = eventually(audit_by_status, lambda found: sum(found.values()) >= 2)
        with psycopg.connect(database_url) as conn:
            cards = {row[0] for row in conn.execute("SELECT card_uuid FROM feedback")}
            refused = conn.execute(
                "SELECT reason, sum(count) FROM audit_refusals GROUP BY reason"
            ).fetchall()
        assert cards == {e["card"] for e in entries}
        assert audited == {200: 2}
        assert refused == [("replayed-jti", 2)]  # the two replays, counted, not a row each
        # the per-instance SQLite files were not used as stores
        assert not (tmp_path / "a.db").exists() and not (tmp_path / "b.db").exists()
