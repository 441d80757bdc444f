"""Function credentials: derived, stable, told apart from the root key."""

from squall.api.keyring import KeyRing


def test_function_keys_are_stable_distinct_and_known() -> None:
    ring = KeyRing("AKIAROOT", "root-secret")
    a = ring.for_function("a")
    assert ring.for_function("a") == a
    b = ring.for_function("b")
    assert a != b and a[0].startswith("ASIA") and len(a[0]) == 20 and len(a[1]) == 40
    assert ring[a[0]] == a[1] and ring["AKIAROOT"] == "root-secret"
    assert set(ring) == {"AKIAROOT", a[0], b[0]}
    root = ring.principal("AKIAROOT")
    assert root is not None and root.function is None
    principal = ring.principal(a[0])
    assert principal is not None and principal.function == "a"
    # Another server (another root secret) derives other keys.
    assert KeyRing("AKIAROOT", "other").for_function("a") != a
