from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from skiff.distribution.auth import parse_challenges
from skiff.distribution.credentials import (
    Credentials,
    DockerConfig,
    StaticCredentials,
    config_key,
    decode_registry_auth,
    encode_registry_auth,
    normalize_server,
)
from skiff.errors import InvalidArgument


def test_challenges_are_parsed() -> None:
    [c] = parse_challenges(
        ['Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
         'scope="repository:library/busybox:pull"']
    )  # fmt: skip
    assert c.scheme == "bearer"
    assert c.realm == "https://auth.docker.io/token"
    assert c.params["scope"] == "repository:library/busybox:pull"
    [b] = parse_challenges(['Basic realm="Registry Realm"'])
    assert (b.scheme, b.realm) == ("basic", "Registry Realm")
    two = parse_challenges(['Basic realm="x", Bearer realm="y",service=s'])
    assert [(c.scheme, c.realm) for c in two] == [("basic", "x"), ("bearer", "y")]


def test_server_names_are_normalized() -> None:
    assert normalize_server("https://index.docker.io/v1/") == "docker.io"
    assert normalize_server("registry-1.docker.io") == "docker.io"
    assert normalize_server("http://127.0.0.1:5000/v2/") == "127.0.0.1:5000"
    assert config_key("docker.io") == "https://index.docker.io/v1/"
    assert config_key("127.0.0.1:5000") == "127.0.0.1:5000"


def test_x_registry_auth_round_trip_and_docker_cli_forms() -> None:
    header = encode_registry_auth(Credentials("alice", "pw"), "127.0.0.1:5000")
    assert decode_registry_auth(header) == (Credentials("alice", "pw"), "127.0.0.1:5000")
    # the docker CLI: base64url with padding; `auth` instead of username/password
    doc = {"auth": base64.b64encode(b"bob:s3cret").decode(), "serveraddress": "r.example"}
    raw = base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")
    assert decode_registry_auth(raw) == (Credentials("bob", "s3cret"), "r.example")
    assert decode_registry_auth("") == (Credentials(), "")
    assert decode_registry_auth(base64.urlsafe_b64encode(b"{}").decode())[0].empty
    with pytest.raises(InvalidArgument):
        decode_registry_auth("!!!notbase64")


def test_static_credentials_match_their_server() -> None:
    s = StaticCredentials(Credentials("a", "b"), "https://index.docker.io/v1/")
    assert s.get("docker.io") == Credentials("a", "b")
    assert s.get("127.0.0.1:5000") is None
    assert StaticCredentials(Credentials("a", "b")).get("anything") == Credentials("a", "b")


def test_config_json_store_get_erase(tmp_path: Path) -> None:
    cfg = DockerConfig(tmp_path / "config.json")
    assert cfg.get("127.0.0.1:5000") is None
    cfg.store("127.0.0.1:5000", Credentials("alice", "pw"))
    cfg.store("docker.io", Credentials("hub", "tok"))
    doc = json.loads((tmp_path / "config.json").read_text())
    assert doc["auths"]["127.0.0.1:5000"]["auth"] == base64.b64encode(b"alice:pw").decode()
    assert "https://index.docker.io/v1/" in doc["auths"]
    assert stat.S_IMODE(os.stat(tmp_path / "config.json").st_mode) == 0o600
    assert cfg.get("127.0.0.1:5000") == Credentials("alice", "pw")
    assert cfg.get("index.docker.io") == Credentials("hub", "tok")
    assert cfg.erase("127.0.0.1:5000")
    assert cfg.get("127.0.0.1:5000") is None
    assert not cfg.erase("127.0.0.1:5000")


def test_credential_helper(tmp_path: Path) -> None:
    helper = tmp_path / "docker-credential-fake"
    db = tmp_path / "db.json"
    helper.write_text(
        "#!/usr/bin/env python3\n"
        "import json, sys\n"
        f"db = {str(db)!r}\n"
        "try:\n    d = json.load(open(db))\nexcept FileNotFoundError:\n    d = {}\n"
        "act = sys.argv[1]; data = sys.stdin.read()\n"
        "if act == 'store':\n    x = json.loads(data); d[x['ServerURL']] = x\n"
        "elif act == 'get':\n"
        "    if data.strip() not in d:\n        print('credentials not found in native keychain'); sys.exit(1)\n"
        "    print(json.dumps(d[data.strip()]))\n"
        "elif act == 'erase':\n    d.pop(data.strip(), None)\n"
        "json.dump(d, open(db, 'w'))\n"
    )
    helper.chmod(0o755)
    (tmp_path / "config.json").write_text(json.dumps({"credsStore": "fake"}))
    cfg = DockerConfig(
        tmp_path / "config.json", helper_prefix=str(tmp_path) + "/docker-credential-"
    )
    assert cfg.get("r.example:5000") is None
    cfg.store("r.example:5000", Credentials("carol", "pw"))
    assert json.loads(db.read_text())["r.example:5000"]["Secret"] == "pw"
    assert cfg.get("r.example:5000") == Credentials("carol", "pw")
    assert cfg.erase("r.example:5000")
    assert cfg.get("r.example:5000") is None
