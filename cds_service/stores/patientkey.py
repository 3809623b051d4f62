"""How the audit names a patient: a keyed hash by default, the plain id, or nothing.

A keyed hash (HMAC-SHA256) lets an auditor find every record of one patient, given
the id and the key, while the audit table alone reveals no ids; an unkeyed hash of
a short id could be reversed by trying every id. The key comes from
``audit_hash_key``; when that is empty, one is generated once and kept in the
database's ``store_meta`` table, so every instance and every restart sharing the
database agree on it (keep the database private, or set the key yourself).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Literal

from cds_service.stores.sql import Database

Mode = Literal["hash", "plain", "omit"]
MODES: tuple[Mode, ...] = ("hash", "plain", "omit")

META_SCHEMA = """
CREATE TABLE IF NOT EXISTS store_meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
)
"""
HASH_KEY_NAME = "audit_hash_key"


def stored_hash_key(db: Database) -> str:
    """The key kept in the database, created by whichever instance asks first."""
    db.create_schema(META_SCHEMA)
    with db.transaction() as tx:
        tx.execute(
            "INSERT INTO store_meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
            (HASH_KEY_NAME, secrets.token_hex(32)),
        )
        rows = tx.query("SELECT value FROM store_meta WHERE name = ?", (HASH_KEY_NAME,))
    value: str = rows[0][0]
    return value


class PatientKeyer:
    """``keyer(patient_id)``: what the audit stores for that patient, per the mode."""

    def __init__(self, mode: str, key: str = "") -> None:
        if mode not in MODES:
            raise ValueError(f"audit_patient_id must be one of {', '.join(MODES)}, got {mode!r}")
        if mode == "hash" and not key:
            raise ValueError("a key is required to hash patient ids")
        self.mode = mode
        self._key = key.encode("utf-8")

    @classmethod
    def for_database(cls, mode: str, configured_key: str, db: Database) -> PatientKeyer:
        """The configured key, else the database's own; no key is made unless hashing."""
        if mode != "hash":
            return cls(mode)
        return cls(mode, configured_key or stored_hash_key(db))

    def __call__(self, patient_id: str) -> str | None:
        if self.mode == "omit":
            return None
        if self.mode == "plain":
            return patient_id
        return hmac.new(self._key, patient_id.encode("utf-8"), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:  # never show the key
        return f"PatientKeyer(mode={self.mode!r})"
