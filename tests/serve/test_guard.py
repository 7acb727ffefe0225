"""The first rule every request passes (:mod:`impasto.serve.guard`), through the HTTP API: only this server's
own Host and Origin are answered, and the names it counts as its own.
"""

from __future__ import annotations

import pytest

pytest.importorskip("httpx")
pytest.importorskip("starlette")

from impasto.serve.guard import own_hosts  # noqa: E402
from serve.helpers import PORT, files_under, png  # noqa: E402


@pytest.mark.parametrize("headers, status", [
    ({"Host": f"localhost:{PORT}"}, 200),
    ({"Host": f"[::1]:{PORT}"}, 200),
    ({"Host": f"127.0.0.1:{PORT}", "Origin": f"http://127.0.0.1:{PORT}"}, 200),
    ({"Host": f"evil.example:{PORT}"}, 403),         # DNS rebinding: a name of another site pointed here
    ({"Host": "127.0.0.1:9999"}, 403),               # not this server's port
    ({"Host": f"127.0.0.1:{PORT}", "Origin": "http://evil.example"}, 403),
    ({"Host": f"127.0.0.1:{PORT}", "Origin": "null"}, 403),
    ({"Host": f"127.0.0.1:{PORT}", "Origin": f"https://127.0.0.1:{PORT}"}, 403),
])
def test_only_its_own_host_and_origin_are_answered(bare, headers, status):
    r = bare.get("/api/info", headers=headers)
    assert r.status_code == status, r.text
    if status == 403:
        assert set(r.json()) == {"error"} and "only" in r.json()["error"]
    else:
        assert r.headers["x-frame-options"] == "DENY" and r.headers["cross-origin-resource-policy"] == "same-origin"


def test_a_post_from_another_origin_changes_nothing(bare):
    photo = bare.upload("p.png", png((32, 32))).json()["id"]
    before = files_under(bare.data)
    r = bare.post("/api/jobs", json={"method": "fast", "content": photo, "model": "starry_night"},
                  headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    r = bare.upload("q.png", png((32, 32)), headers={"Host": "evil.example"})
    assert r.status_code == 403
    assert files_under(bare.data) == before
    assert bare.get("/api/jobs").json() == {"jobs": []}
    s, messages = bare.events(lambda m: True, timeout=5, headers=[(b"host", b"evil.example")])
    assert s == 403


def test_every_interface_adds_the_machines_own_names():
    import socket

    assert f"{socket.gethostname().lower()}:{PORT}" in own_hosts("0.0.0.0", PORT)
    assert own_hosts("127.0.0.1", PORT) == {f"127.0.0.1:{PORT}", f"localhost:{PORT}", f"[::1]:{PORT}"}
    assert "[::1]:80" in own_hosts("::1", 80) and "localhost" in own_hosts("::1", 80)


def test_loopback_addresses_are_told_from_others():
    from impasto.serve.guard import is_loopback

    assert all(map(is_loopback, ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost")))
    assert not any(map(is_loopback, ("0.0.0.0", "::", "192.168.1.5", "example.com")))
