"""merge_config: the Config and HostConfig that `inspect` shows, with dockerd's defaults."""

from __future__ import annotations

from skiff.containers.bundle import merge_config
from skiff.oci.image import ImageConfig


def test_ipc_mode_defaults_to_private_as_dockerd_fills_it() -> None:
    _, host_config, _, _ = merge_config({"Image": "i", "Cmd": ["true"]}, ImageConfig())
    assert host_config["IpcMode"] == "private"
    _, empty, _, _ = merge_config(
        {"Image": "i", "Cmd": ["true"], "HostConfig": {"IpcMode": ""}}, ImageConfig()
    )
    assert empty["IpcMode"] == "private"


def test_a_given_ipc_mode_is_kept() -> None:
    for mode in ("shareable", "host", "none", "container:abc"):
        body = {"Image": "i", "Cmd": ["true"], "HostConfig": {"IpcMode": mode}}
        assert merge_config(body, ImageConfig())[1]["IpcMode"] == mode


def test_config_env_is_the_image_env_and_the_request_env() -> None:
    """dockerd adds no PATH to Config.Env for an image without one (an imported
    one); the process gets PATH from the spec."""
    config, _, _, _ = merge_config({"Image": "i", "Cmd": ["true"], "Env": ["A=1"]}, ImageConfig())
    assert config["Env"] == ["A=1"]
    image = ImageConfig(env=["PATH=/bin", "A=0"])
    config, _, _, _ = merge_config({"Image": "i", "Cmd": ["true"], "Env": ["A=1"]}, image)
    assert config["Env"] == ["PATH=/bin", "A=1"]
