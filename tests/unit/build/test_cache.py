import json
from pathlib import Path

from skiff.build.cache import SqliteCache


def test_entries_survive_a_reopen_and_prune_in_order(tmp_path: Path) -> None:
    path = str(tmp_path / "builder" / "cache.db")
    cache = SqliteCache(path)
    assert cache.get("k1") is None
    cache.put("k1", "sha256:parent")
    cache.put("k2", "sha256:child")
    cache.put("k3", "sha256:parent")  # the same image under two keys
    cache.put("k2", "sha256:child2")  # a key taken again
    cache.close()
    cache = SqliteCache(path)
    assert cache.get("k2") == "sha256:child2"
    assert cache.prune() == ["sha256:parent", "sha256:child2"]
    assert cache.get("k1") is None
    cache.close()


def test_the_old_json_file_is_taken_in(tmp_path: Path) -> None:
    folder = tmp_path / "builder"
    folder.mkdir()
    (folder / "cache.json").write_text(json.dumps({"k": "sha256:a"}))
    cache = SqliteCache(str(folder / "cache.db"))
    assert cache.get("k") == "sha256:a"
    assert not (folder / "cache.json").exists()
    cache.close()
