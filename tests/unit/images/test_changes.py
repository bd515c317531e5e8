"""`--change` lines applied to an image config, as dockerd's BuildFromConfig."""

from __future__ import annotations

import pytest

from skiff.errors import InvalidArgument
from skiff.images.changes import apply_changes
from skiff.oci.image import ImageConfig


def test_every_instruction() -> None:
    c = apply_changes(
        ImageConfig(),
        [
            'CMD ["echo", "hi"]',
            "ENV A=1 B='two words'",
            "ENV LEGACY value with spaces",
            "EXPOSE 80 53/udp 8000-8001",
            'LABEL a=b "c d"=e',
            "USER nobody",
            "WORKDIR /srv",
            "WORKDIR app",
            'VOLUME ["/data"]',
            "VOLUME /logs /tmp/x",
            "STOPSIGNAL SIGINT",
            "ONBUILD RUN echo built",
            "HEALTHCHECK NONE",
        ],
    )
    assert c.cmd == ["echo", "hi"]
    assert c.env == ["A=1", "B=two words", "LEGACY=value with spaces"]
    assert set(c.exposed_ports) == {"80/tcp", "53/udp", "8000/tcp", "8001/tcp"}
    assert c.labels == {"a": "b", "c d": "e"}
    assert c.user == "nobody"
    assert c.working_dir == "/srv/app"
    assert set(c.volumes) == {"/data", "/logs", "/tmp/x"}
    assert c.stop_signal == "SIGINT"
    assert c.on_build == ["RUN echo built"]
    assert c.healthcheck == {"Test": ["NONE"]}


def test_shell_form_and_entrypoint_clears_cmd() -> None:
    c = apply_changes(ImageConfig(cmd=["sh"]), ["ENTRYPOINT top -b"])
    assert c.entrypoint == ["/bin/sh", "-c", "top -b"]
    assert c.cmd is None
    c = apply_changes(ImageConfig(), ['CMD ["x"]', 'ENTRYPOINT ["/e"]'])
    assert c.cmd == ["x"]
    assert c.entrypoint == ["/e"]


def test_env_replaces_same_key() -> None:
    c = apply_changes(ImageConfig(env=["PATH=/bin", "A=0"]), ["ENV A=1"])
    assert c.env == ["PATH=/bin", "A=1"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("RUN echo", "run is not a valid change command"),
        ("FROM busybox", "from is not a valid change command"),
        ("BOGUS x", "unknown instruction: BOGUS"),
        ("EXPOSE 99999", "invalid containerPort: 99999"),
        ("USER", "requires at least one argument"),
        ("ONBUILD ONBUILD RUN x", "isn't allowed as an ONBUILD trigger"),
    ],
)
def test_refused(line: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        apply_changes(ImageConfig(), [line])
