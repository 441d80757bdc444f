"""Which bucket a request addresses through its Host header (virtual-host style).

``<bucket>.localhost`` and ``<bucket>.s3.localhost`` (any port) name a bucket, as
``<bucket>.s3.amazonaws.com`` does on AWS; any other host (an IP address, ``localhost``) leaves the
bucket to the path (path style).
"""

from __future__ import annotations

DEFAULT_HOST_SUFFIXES = ("s3.localhost", "localhost")


def bucket_from_host(host: str, suffixes: tuple[str, ...] = DEFAULT_HOST_SUFFIXES) -> str | None:
    """The bucket named by ``host`` (a Host header value, port allowed), or ``None``."""
    if host.startswith("["):
        return None  # an IPv6 literal
    name = host.rsplit(":", 1)[0].lower()
    if name in suffixes:
        return None  # the endpoint itself (``s3.localhost``), not a bucket under it
    for suffix in sorted(suffixes, key=len, reverse=True):
        if name.endswith("." + suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix) - 1]
    return None
