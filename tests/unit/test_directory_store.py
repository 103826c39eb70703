"""The folder-backed build store lists and reads keys whether their root was given as a relative path
(`make build` passes `--out out/samples-offline`) or an absolute one."""

from __future__ import annotations

from pathlib import Path

import pytest

from coach.local.dir_store import DirectoryStore


def test_a_relative_root_lists_and_reads_its_keys(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = DirectoryStore(Path("out/build/.state"))
    store.put_text("builds/b1/stories/s1.json", "{}")
    store.put_text("builds/b1/feedback/s1.json", "{}")
    assert list(store.list_keys("builds/b1/stories/")) == ["builds/b1/stories/s1.json"]
    assert store.get_text("builds/b1/stories/s1.json") == "{}"
    with pytest.raises(ValueError):
        store.get_text("../../escape.json")
