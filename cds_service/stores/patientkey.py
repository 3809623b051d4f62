"""How the audit names a patient: a keyed hash by default, the plain id, or nothing.

A keyed hash (HMAC-SHA256) lets an auditor find every record of one patient, given
the id and the key, while the audit table alone reveals no ids; an unkeyed hash of
a short id could be reversed by trying every id, and so can a keyed one by whoever
holds the key (a 6-digit record number takes seconds). So the key must not sit next
to the hashes: outside development mode it comes from ``audit_hash_key`` (best from
a secret file, ``SPINE_CDS_AUDIT_HASH_KEY_FILE``) and startup stops without one. In
development mode an empty key is generated once and kept in the database's
``store_meta`` table, so that restarts agree. A key that is short or a placeholder
(``CHANGE-ME``) is refused in every mode (``hash_key_problem``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Literal

from cds_service.settings import SettingsError
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
# 32 random bytes as hex (64 characters) or base64 (44) both pass; a passphrase must be
# at least this long too.
MIN_HASH_KEY_LENGTH = 32
MIN_DISTINCT_CHARACTERS = 10  # "aaaa...", "0101..." and the like are not keys
PLACEHOLDER_WORDS = ("change", "replace", "example", "placeholder", "secret", "password", "todo")
MAKE_A_KEY = "python3 -c 'import secrets; print(secrets.token_hex(32))'"


def hash_key_problem(key: str) -> str | None:
    """Why ``key`` cannot key the patient hash (too short, too uniform, a placeholder),
    or None. The message names the setting and never quotes the key."""
    folded = "".join(c for c in key.lower() if c.isalnum())
    if len(key) < MIN_HASH_KEY_LENGTH:
        why = f"is {len(key)} characters long; at least {MIN_HASH_KEY_LENGTH} are required"
    elif any(word in folded for word in PLACEHOLDER_WORDS):
        why = "looks like a placeholder (it contains a word such as CHANGE-ME or example)"
    elif len(set(key)) < MIN_DISTINCT_CHARACTERS:
        why = f"has fewer than {MIN_DISTINCT_CHARACTERS} different characters"
    else:
        return None
    return (
        f"audit_hash_key {why}: use at least 32 random bytes, e.g. the output of {MAKE_A_KEY}"
        " (SPINE_CDS_AUDIT_HASH_KEY_FILE naming a file that holds it)"
    )


MISSING_KEY = (
    "audit_hash_key must be set outside development mode when audit_patient_id is hash:"
    " the key of the patient-id hash must not be kept in the database whose hashes it"
    " protects. Put at least 32 random bytes (e.g. the output of "
    f"{MAKE_A_KEY}) in a secret file and name it with SPINE_CDS_AUDIT_HASH_KEY_FILE, the"
    " same on every instance. If an earlier version generated a key into this database"
    " (table store_meta, name audit_hash_key), use that value to keep older hashes"
    " comparable, then delete that row. Or set audit_patient_id = omit."
)


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
    def for_database(
        cls, mode: str, configured_key: str, db: Database, dev_mode: bool = False
    ) -> PatientKeyer:
        """The configured key; in development mode without one, the database's own. No
        key is needed, or made, unless hashing. SettingsError for a missing or weak key."""
        if mode != "hash":
            return cls(mode)
        if configured_key:
            if problem := hash_key_problem(configured_key):
                raise SettingsError(problem)
            return cls(mode, configured_key)
        if not dev_mode:
            raise SettingsError(MISSING_KEY)
        return cls(mode, stored_hash_key(db))

    def __call__(self, patient_id: str) -> str | None:
        if self.mode == "omit":
            return None
        if self.mode == "plain":
            return patient_id
        return hmac.new(self._key, patient_id.encode("utf-8"), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:  # never show the key
        return f"PatientKeyer(mode={self.mode!r})"
