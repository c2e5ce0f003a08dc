"""House rule 8: no command but ``workbench pacs`` opens a socket (nor imports the networking code)."""
from __future__ import annotations

import socket
import sys

import numpy as np
import pytest

from workbench.cli import _command_modules, main


@pytest.fixture
def no_network(monkeypatch):
    calls = []

    def refuse(self, address, *args, **kwargs):
        calls.append(address)
        raise AssertionError(f"network connection to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: refuse(None, address))
    return calls


def test_every_other_command_runs_without_network(no_network, tmp_path, capsys):
    import cv2

    image = tmp_path / "img.png"
    cv2.imwrite(str(image), (np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64))
    for argv in (["info", str(image)], ["segment", str(image), "--threshold", "otsu", "-o",
                                        str(tmp_path / "mask.png")],
                 ["measure", str(image), str(tmp_path / "mask.png")]):
        assert main(argv) == 0, argv
    for name in _command_modules():
        if name != "pacs":
            with pytest.raises(SystemExit):
                main([name, "--help"])
    capsys.readouterr()
    assert no_network == []


def test_importing_the_commands_does_not_load_the_networking_code():
    import subprocess

    code = ("import sys, workbench.cli as c; c._command_modules(); "
            "print(sorted(m for m in ('pynetdicom', 'dicomweb_client', 'requests', 'workbench.pacs.dimse') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
