import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from skiff.build.builder import Builder, BuildError, BuildOptions, MemoryCache
from skiff.build.dockerfile import DockerfileError
from skiff.testing.build import FakeExecutor


@pytest.fixture
def ex(tmp_path: Path) -> Iterator[FakeExecutor]:
    fake = FakeExecutor(str(tmp_path / "fake"))
    fake.add_image(
        "busybox:latest",
        {
            "/bin/sh": "",
            "/etc/passwd": "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\n",
            "/etc/group": "root:x:0:\nstaff:x:50:\n",
        },
    )
    yield fake
    fake.close()


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    c = tmp_path / "ctx"
    c.mkdir()
    (c / "hello.txt").write_text("hello\n")
    (c / "dir" / "sub").mkdir(parents=True)
    (c / "dir" / "a").write_text("a")
    (c / "dir" / "sub" / "b").write_text("b")
    return c


def build(
    ex: FakeExecutor, ctx: Path, text: str, cache: MemoryCache | None = None, **opts: Any
) -> tuple[str, list[dict[str, Any]]]:
    messages: list[dict[str, Any]] = []
    builder = Builder(ex, cache if cache is not None else MemoryCache())
    image_id = builder.build(text, str(ctx), BuildOptions(**opts), messages.append)
    return image_id, messages


def text_of(messages: list[dict[str, Any]]) -> str:
    return "".join(m.get("stream", "") for m in messages)


FULL = """ARG BASE=busybox
FROM ${BASE} AS base
LABEL maintainer="me" version=1
ENV A=1 B="two words"
ENV C legacy value
ARG X=dflt
RUN echo "run $A $X" > /ran && echo out-line
WORKDIR /app
COPY hello.txt dir ./
COPY --chown=1:2 hello.txt /owned.txt
USER nobody
EXPOSE 80 443/udp
VOLUME /data
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=3s --retries=3 CMD echo ok
SHELL ["/bin/sh", "-c"]
ONBUILD RUN echo onbuild
MAINTAINER someone
ENTRYPOINT ["/bin/sh", "-c"]
CMD echo hi
"""


def test_every_instruction_as_dockerd_records_it(ex: FakeExecutor, ctx: Path) -> None:
    image_id, messages = build(ex, ctx, FULL, build_args={"X": "given"}, tags=["ref:1"])
    out = text_of(messages)
    assert "Step 1/20 : ARG BASE=busybox\n" in out
    assert "Step 20/20 : CMD echo hi\n" in out
    assert "out-line\n" in out
    assert out.endswith(f"Successfully built {image_id[7:19]}\nSuccessfully tagged ref:1\n")
    assert {"aux": {"ID": image_id}} in messages
    image = ex.image_config(image_id)
    c = image["config"]
    assert c["Env"] == ["PATH=/bin", "A=1", "B=two words", "C=legacy value"]
    assert c["Labels"] == {"maintainer": "me", "version": "1"}
    assert c["ExposedPorts"] == {"443/udp": {}, "80/tcp": {}}
    assert c["Volumes"] == {"/data": {}}
    assert c["WorkingDir"] == "/app"
    assert c["User"] == "nobody"
    assert c["StopSignal"] == "SIGTERM"
    assert c["Healthcheck"] == {
        "Test": ["CMD-SHELL", "echo ok"],
        "Interval": 5 * 10**9,
        "Timeout": 3 * 10**9,
        "Retries": 3,
    }
    assert c["Entrypoint"] == ["/bin/sh", "-c"]
    assert c["Cmd"] == ["/bin/sh", "-c", "echo hi"]
    assert c["OnBuild"] == ["RUN echo onbuild"]
    assert c["Shell"] == ["/bin/sh", "-c"]
    assert image["author"] == "someone"
    created_by = [h["created_by"] for h in image["history"][1:]]
    assert created_by[:5] == [
        "/bin/sh -c #(nop)  LABEL maintainer=me version=1",
        "/bin/sh -c #(nop)  ENV A=1 B=two words",
        "/bin/sh -c #(nop)  ENV C=legacy value",
        "/bin/sh -c #(nop)  ARG X=dflt",
        '|1 X=given /bin/sh -c echo "run $A $X" > /ran && echo out-line',
    ]
    assert created_by[5] == "/bin/sh -c #(nop) WORKDIR /app"
    assert created_by[6].startswith("/bin/sh -c #(nop) COPY multi:")
    assert created_by[6].endswith(" in ./ ")
    assert created_by[7].startswith("/bin/sh -c #(nop) COPY --chown=1:2file:")
    assert created_by[8:] == [
        "/bin/sh -c #(nop)  USER nobody",
        "/bin/sh -c #(nop)  EXPOSE 443/udp 80",
        "/bin/sh -c #(nop)  VOLUME [/data]",
        "/bin/sh -c #(nop)  STOPSIGNAL SIGTERM",
        """/bin/sh -c #(nop)  HEALTHCHECK &{["CMD-SHELL" "echo ok"] "5s" "3s" "0s" '\\x03'}""",
        "/bin/sh -c #(nop)  SHELL [/bin/sh -c]",
        "/bin/sh -c #(nop)  ONBUILD RUN echo onbuild",
        "/bin/sh -c #(nop)  MAINTAINER someone",
        '/bin/sh -c #(nop)  ENTRYPOINT ["/bin/sh" "-c"]',
        '/bin/sh -c #(nop)  CMD ["/bin/sh" "-c" "echo hi"]',
    ]
    empty = [bool(h.get("empty_layer")) for h in image["history"][1:]]
    assert empty[4:8] == [False, False, False, False]
    assert image["container_config"]["Cmd"] == [
        "/bin/sh",
        "-c",
        "#(nop) ",
        'CMD ["/bin/sh" "-c" "echo hi"]',
    ]
    assert ex.read(image_id, "/ran") == "run 1 given\n"
    assert ex.read(image_id, "/app/hello.txt") == "hello\n"
    assert ex.read(image_id, "/app/sub/b") == "b"
    st = ex.stat(image_id, "/owned.txt")
    assert (st.st_uid, st.st_gid) == (1, 2)
    assert not ex.containers  # every working container removed


def test_cache_reused_and_content_keyed(ex: FakeExecutor, ctx: Path) -> None:
    cache = MemoryCache()
    text = 'FROM busybox\nCOPY hello.txt /\nRUN echo x > /y\nCMD ["sh"]\n'
    first, _ = build(ex, ctx, text, cache)
    os.utime(ctx / "hello.txt", (1, 1))  # mtime alone does not bust the cache
    second, messages = build(ex, ctx, text, cache)
    assert first == second
    assert text_of(messages).count(" ---> Using cache\n") == 3
    runs = len(ex.runs)
    (ctx / "hello.txt").write_text("changed\n")
    third, messages = build(ex, ctx, text, cache)
    assert third != first
    assert len(ex.runs) == runs + 1
    assert "Using cache" not in text_of(messages)
    _fourth, messages = build(ex, ctx, text, cache, no_cache=True)
    assert "Using cache" not in text_of(messages)


def test_build_args_change_the_cache_key(ex: FakeExecutor, ctx: Path) -> None:
    cache = MemoryCache()
    text = "FROM busybox\nARG V\nRUN echo $V > /v\n"
    a, _ = build(ex, ctx, text, cache, build_args={"V": "1"})
    b, _ = build(ex, ctx, text, cache, build_args={"V": "2"})
    assert a != b
    assert ex.read(b, "/v") == "2\n"


def test_multi_stage_target_and_copy_from(ex: FakeExecutor, ctx: Path) -> None:
    text = (
        "FROM busybox AS one\nRUN echo one > /one\n"
        "FROM busybox AS unused\nRUN echo never > /never\n"
        "FROM busybox AS two\nCOPY --from=one /one /copied\n"
        "FROM busybox AS three\nRUN echo three\n"
    )
    image_id, messages = build(ex, ctx, text, target="two")
    assert ex.read(image_id, "/copied") == "one\n"
    assert "never" not in text_of(messages)
    assert "three" not in text_of(messages)
    assert "Step 1/4 : FROM busybox AS one" in text_of(messages)
    with pytest.raises(BuildError, match="failed to reach build target nope"):
        build(ex, ctx, text, target="nope")


def test_failing_run_reports_code_and_cleans_up(ex: FakeExecutor, ctx: Path) -> None:
    with pytest.raises(BuildError) as info:
        build(ex, ctx, "FROM busybox\nRUN exit 3\n")
    assert str(info.value) == "The command '/bin/sh -c exit 3' returned a non-zero code: 3"
    assert info.value.code == 3
    assert not ex.containers


def test_syntax_error_before_any_step(ex: FakeExecutor, ctx: Path) -> None:
    with pytest.raises(DockerfileError, match="line 3: unknown instruction: FORM"):
        build(ex, ctx, "FROM busybox\nRUN echo hi\nFORM x\n")
    assert not ex.runs


def test_context_escape_refused(ex: FakeExecutor, ctx: Path) -> None:
    os.symlink("/etc", ctx / "evil")
    for src in ("../x", "evil/passwd"):
        with pytest.raises(Exception, match="Forbidden path outside the build context"):
            build(ex, ctx, f"FROM busybox\nCOPY {src} /x\n")
    assert not ex.containers


def test_add_tar_extracts_and_url_refused(ex: FakeExecutor, ctx: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = b"inside"
        info = tarfile.TarInfo("d/f")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    (ctx / "a.tgz").write_bytes(buf.getvalue())
    image_id, _ = build(ex, ctx, "FROM busybox\nADD a.tgz /x/\n")
    assert ex.read(image_id, "/x/d/f") == "inside"
    with pytest.raises(BuildError, match="ADD from a URL is not supported"):
        build(ex, ctx, "FROM busybox\nADD http://example.com/f /f\n")


def test_copy_globs_chmod_heredoc(ex: FakeExecutor, ctx: Path) -> None:
    (ctx / "b.txt").write_text("b")
    text = "FROM busybox\nENV N=v\nCOPY --chmod=600 *.txt /t/\nCOPY <<EOF /h\nval=$N\nEOF\nRUN <<EOF\necho from-heredoc\nEOF\n"
    image_id, messages = build(ex, ctx, text)
    assert ex.read(image_id, "/t/b.txt") == "b"
    assert ex.read(image_id, "/t/hello.txt") == "hello\n"
    assert ex.stat(image_id, "/t/b.txt").st_mode & 0o777 == 0o600
    assert ex.read(image_id, "/h") == "val=v\n"
    assert "from-heredoc\n" in text_of(messages)
    with pytest.raises(BuildError, match="the destination must be a directory and end with a /"):
        build(ex, ctx, "FROM busybox\nCOPY *.txt /t\n")


def test_labels_quiet_onbuild_and_warning(ex: FakeExecutor, ctx: Path) -> None:
    _parent, _ = build(ex, ctx, "FROM busybox\nONBUILD RUN echo triggered\n", tags=["parent"])
    image_id, messages = build(
        ex, ctx, "FROM parent\n", labels={"l": "v"}, build_args={"UNUSED": "1"}
    )
    out = text_of(messages)
    assert "# Executing 1 build trigger\n" in out
    assert "triggered\n" in out
    assert "[Warning] One or more build-args [UNUSED] were not consumed\n" in out
    config = ex.image_config(image_id)["config"]
    assert config["Labels"] == {"l": "v"}
    assert config["OnBuild"] is None
    _, quiet = build(ex, ctx, "FROM busybox\nRUN echo loud\n", quiet=True)
    assert [m for m in quiet if "stream" in m] == [{"stream": quiet[-1]["stream"]}]


def test_scratch_and_pull(ex: FakeExecutor, ctx: Path) -> None:
    image_id, _ = build(ex, ctx, "FROM scratch\nCOPY hello.txt /\n", pull=True)
    assert ex.read(image_id, "/hello.txt") == "hello\n"
    build(ex, ctx, "FROM busybox\n", pull=True)
    assert ex.pulls == ["busybox"]


SUBSTITUTION = """FROM busybox
ENV A=a EMPTY=
ENV B1=${A:-d} B2=${NOPE:-d} B3=${EMPTY:-d} B4=${A:+alt} B5=${NOPE:+alt} B6='$A' B7="$A x" B8=\\$A B9=a\\ b B10="q\\"q" B11=${A}b$A
ENV C1 ${A}  legacy  "quoted"
LABEL "l 1"="v 1" l2=${A}
WORKDIR /w/$A
WORKDIR sub
EXPOSE 80/tcp 90-91/udp
USER ${A}:0
"""


def test_substitution_as_dockerd_20_10(ex: FakeExecutor, ctx: Path) -> None:
    """The values dockerd 20.10's classic builder recorded for SUBSTITUTION."""
    image_id, _ = build(ex, ctx, SUBSTITUTION)
    c = ex.image_config(image_id)["config"]
    assert c["Env"][1:] == [
        "A=a", "EMPTY=", "B1=a", "B2=d", "B3=d", "B4=alt", "B5=", "B6=$A", "B7=a x",
        "B8=$A", "B9=a b", 'B10=q"q', "B11=aba", "C1=a  legacy  quoted",
    ]  # fmt: skip
    assert c["Labels"] == {"l 1": "v 1", "l2": "a"}
    assert c["WorkingDir"] == "/w/a/sub"
    assert c["ExposedPorts"] == {"80/tcp": {}, "90/udp": {}, "91/udp": {}}
    assert c["User"] == "a:0"
