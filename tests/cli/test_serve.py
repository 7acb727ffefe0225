"""``impasto serve`` (:mod:`impasto.cli.serve`): the command refuses a port in use and a bad port with one line."""

from __future__ import annotations

import pytest

pytest.importorskip("httpx")
pytest.importorskip("starlette")


def test_the_command_refuses_a_port_in_use_and_a_bad_port_with_one_line(tmp_path):
    import socket

    from conftest import run_cli

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, out, err = run_cli("serve", "--port", port, "--data", tmp_path / "data")
    assert (code, err) == (2, f"impasto: error: --port {port}: already in use on 127.0.0.1; choose another port\n")
    code, out, err = run_cli("serve", "--port", 70000, "--data", tmp_path / "data")
    assert (code, err) == (2, "impasto: error: --port must be from 1 to 65535, got 70000\n")
