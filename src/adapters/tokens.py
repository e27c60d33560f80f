"""Bearer tokens: 32 random bytes for the client, only their SHA-256 kept in storage,
so a copy of the database holds no live credential."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_BYTES = 32


class SecretTokens:
    def new(self) -> str:
        return secrets.token_urlsafe(TOKEN_BYTES)

    def digest(self, token: str) -> str:
        # A fast hash suffices: the secret has 256 bits of entropy, nothing to brute-force.
        return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
