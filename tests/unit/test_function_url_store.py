"""Function URL configs on disk, the gateway's addressing of function URLs and bucket websites, and
website configuration documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from squall.gateway import function_urls, websites
from squall.gateway.url_store import FunctionUrl, FunctionUrlStore
from squall.services.buckets.errors import InvalidArgument, MalformedXML, NotImplementedHere
from squall.services.buckets.website import WebsiteConfig, WebsiteStore, parse_config, render_config


def a_url(url_id: str, function: str = "f", qualifier: str | None = None) -> FunctionUrl:
    return FunctionUrl(
        url_id=url_id,
        function=function,
        qualifier=qualifier,
        function_arn=f"arn:aws:lambda:us-east-1:000000000000:function:{function}",
        auth_type="NONE",
        invoke_mode="BUFFERED",
        created="2026-01-01T00:00:00.000000Z",
        modified="2026-01-01T00:00:00.000000Z",
        cors={"AllowOrigins": ["*"]},
    )


def test_configs_survive_reopening_and_go_with_their_function(tmp_path: Path) -> None:
    store = FunctionUrlStore(tmp_path / "urls.db")
    store.put(a_url("a" * 32))
    store.put(a_url("b" * 32, qualifier="live"))
    store.put(a_url("c" * 32, function="g"))
    store.close()
    again = FunctionUrlStore(tmp_path / "urls.db")
    assert again.by_id("a" * 32) == a_url("a" * 32)
    assert again.get("f", "live") == a_url("b" * 32, qualifier="live")
    assert again.get("f", "other") is None
    assert [u.url_id for u in again.of_function("f")] == ["a" * 32, "b" * 32]
    again.forget_function("f")
    assert again.of_function("f") == [] and again.by_id("a" * 32) is None
    again.close()
    assert [u.url_id for u in FunctionUrlStore(tmp_path / "urls.db").of_function("g")] == ["c" * 32]


def test_function_url_addressing() -> None:
    url_id = "abcdefghijklmnopqrstuvwxyz012345"
    assert function_urls.locate(f"{url_id}.lambda-url.us-east-1.localhost:8991", "/p/q") == (url_id, "/p/q")
    assert function_urls.locate("127.0.0.1:8991", f"/_lambda-url/{url_id}/p") == (url_id, "/p")
    assert function_urls.locate("127.0.0.1:8991", f"/_lambda-url/{url_id}") == (url_id, "/")
    assert function_urls.locate("127.0.0.1:8991", "/someapi/p") is None
    assert function_urls.locate("abc.execute-api.localhost", "/p") is None


def test_website_addressing() -> None:
    assert websites.locate("my.site.s3-website.localhost:8991", "/a.js") == ("my.site", "/a.js")
    assert websites.locate("blog.s3-website-us-east-1.localhost", "/") == ("blog", "/")
    assert websites.locate("blog.s3-website.us-east-1.localhost", "/") == ("blog", "/")
    assert websites.locate("127.0.0.1:8991", "/_s3-website/blog/x/y.css") == ("blog", "/x/y.css")
    assert websites.locate("127.0.0.1:8991", "/_s3-website/blog") == ("blog", "/")
    assert websites.locate("blog.s3.localhost", "/") is None


def test_website_documents_round_trip_and_are_checked(tmp_path: Path) -> None:
    body = (
        b'<WebsiteConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<IndexDocument><Suffix>index.html</Suffix></IndexDocument><ErrorDocument><Key>404.html</Key></ErrorDocument>"
        b"</WebsiteConfiguration>"
    )
    config = parse_config(body, 12.5)
    assert config == WebsiteConfig(12.5, index_suffix="index.html", error_key="404.html")
    assert parse_config(render_config(config), 12.5) == config
    with pytest.raises(MalformedXML):
        parse_config(b"<WebsiteConfiguration></WebsiteConfiguration>", 1)
    with pytest.raises(MalformedXML):
        parse_config(b"not xml", 1)
    with pytest.raises(InvalidArgument):
        parse_config(
            b"<WebsiteConfiguration><IndexDocument><Suffix></Suffix></IndexDocument></WebsiteConfiguration>", 1
        )
    with pytest.raises(NotImplementedHere):
        parse_config(
            b"<WebsiteConfiguration><IndexDocument><Suffix>i</Suffix></IndexDocument><RoutingRules/>"
            b"</WebsiteConfiguration>",
            1,
        )
    store = WebsiteStore(tmp_path / "websites.db")
    store.put("blog", config)
    store.close()
    assert WebsiteStore(tmp_path / "websites.db").get("blog") == config


def test_a_second_config_for_one_function_and_qualifier_is_not_created(tmp_path: Path) -> None:
    # Two servers on one store, the second's mirror read before the first created its config (no
    # notification between them on SQLite): the store itself refuses the second.
    first, second = FunctionUrlStore(tmp_path / "urls.db"), FunctionUrlStore(tmp_path / "urls.db")
    try:
        assert first.create(a_url("a" * 32))
        assert not second.create(a_url("b" * 32))
        assert second.by_id("b" * 32) is None
        assert second.create(a_url("c" * 32, qualifier="live"))
        second.reload()
        assert [u.url_id for u in second.of_function("f")] == ["a" * 32, "c" * 32]
    finally:
        first.close()
        second.close()
