from __future__ import annotations

import os
from pathlib import Path

import pytest

from skiff.errors import InvalidArgument, NotFound
from skiff.runtime import state as st
from skiff.runtime.state import ContainerState, process_start_time


def test_state_round_trip_and_status(tmp_path: Path) -> None:
    state = ContainerState(str(tmp_path), "c")
    os.mkdir(state.dir)
    state.pid = os.getpid()
    state.pid_start = process_start_time(os.getpid()) or 0
    state.bundle = "/b"
    state.stage = st.CREATED
    state.save()
    os.mkfifo(state.fifo)
    loaded = ContainerState.load(str(tmp_path), "c")
    assert loaded.bundle == "/b"
    assert loaded.status() == st.CREATED
    os.unlink(state.fifo)
    assert loaded.status() == st.RUNNING
    assert loaded.oci_state()["pid"] == os.getpid()


def test_a_reused_pid_is_not_the_container(tmp_path: Path) -> None:
    state = ContainerState(str(tmp_path), "c")
    os.mkdir(state.dir)
    state.pid = os.getpid()
    state.pid_start = 1  # not our start time: the pid was reused
    state.stage = st.CREATED
    state.save()
    loaded = ContainerState.load(str(tmp_path), "c")
    assert loaded.status() == st.STOPPED
    assert loaded.oci_state()["pid"] == 0


def test_missing_and_invalid_ids(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        ContainerState.load(str(tmp_path), "nope")
    for bad in ("", "..", "a/b", "a b"):
        with pytest.raises(InvalidArgument):
            ContainerState.load(str(tmp_path), bad)


def test_transitions() -> None:
    assert st.can_start(st.CREATED)
    assert not st.can_start(st.RUNNING)
    assert st.can_kill(st.RUNNING)
    assert st.can_kill(st.CREATED)
    assert not st.can_kill(st.STOPPED)
    assert st.can_delete(st.STOPPED)
    assert not st.can_delete(st.RUNNING)
