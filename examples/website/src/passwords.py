"""Salted password hashes with PBKDF2-HMAC-SHA256 (standard library), stored as
``pbkdf2_sha256$<iterations>$<salt>$<hash>`` so the cost can grow without breaking old hashes."""

import base64
import hashlib
import hmac
import os

ITERATIONS = 600_000  # OWASP's recommendation for PBKDF2-HMAC-SHA256


def hash_password(password, iterations=ITERATIONS):
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"pbkdf2_sha256${iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(password, stored):
    algorithm, iterations, salt, digest = stored.split("$")
    if algorithm != "pbkdf2_sha256":
        return False
    computed = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    return hmac.compare_digest(computed, base64.b64decode(digest))


# Checked against when the user does not exist, so an unknown name takes as long as a wrong password.
DECOY = "pbkdf2_sha256$600000$w89D4pT8YkELy7cq0ubDMQ==$McyRhzzXu/NZAnSKKQCDKRROLViQaVGRSL+M6R+qntc="


def _b64(data):
    return base64.b64encode(data).decode()
