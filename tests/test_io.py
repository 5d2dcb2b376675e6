import numpy as np
import pytest
from deploybench.errors import InputFileError
from deploybench.io import atomic_dir, atomic_path, load_npz, read_json, save_npz, write_json


def test_failed_write_leaves_neither_target_nor_temp(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_failed_folder_keeps_the_previous_one(tmp_path):
    target = tmp_path / "artifact"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("first")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("second, half-written")
        raise RuntimeError("interrupted")
    assert (target / "a.txt").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["artifact"]


def test_json_and_npz_round_trip(tmp_path):
    write_json(tmp_path / "r.json", {"x": np.float32(1.5), "a": np.arange(3)})
    assert read_json(tmp_path / "r.json") == {"x": 1.5, "a": [0, 1, 2]}
    save_npz(tmp_path / "d.npz", evaluation=np.ones((2, 3), np.float32))
    assert load_npz(tmp_path / "d.npz")["evaluation"].shape == (2, 3)


def test_missing_and_corrupt_files_name_the_fix(tmp_path):
    with pytest.raises(InputFileError, match="missing: rerun"):
        read_json(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputFileError, match="not valid JSON"):
        read_json(tmp_path / "bad.json")
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(InputFileError, match="corrupt"):
        load_npz(tmp_path / "bad.npz")


def test_temporaries_left_by_a_killed_run_are_cleaned_on_the_next_write(tmp_path):
    (tmp_path / ".out.json.abc123.tmp").write_text("half, from a killed run")
    (tmp_path / ".artifact.xyz.tmp").mkdir()
    write_json(tmp_path / "out.json", {"ok": True})
    with atomic_dir(tmp_path / "artifact") as tmp:
        (tmp / "a.txt").write_text("x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifact", "out.json"]


KILLER = """
import os, shutil, signal, sys
from pathlib import Path
import deploybench.io as io

target, primitive, when, nth, fallback = sys.argv[1:]
nth = int(nth)
if fallback == "1":
    io.exchange_paths = lambda first, second: False
owners = {"exchange_paths": io, "replace": os, "rmtree": shutil, "block": None}
real = getattr(owners[primitive], primitive, None)
calls = []

def injected(*args, **kwargs):
    calls.append(args)
    if len(calls) == nth and when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    result = real(*args, **kwargs)
    if len(calls) == nth and when == "after":
        os.kill(os.getpid(), signal.SIGKILL)
    return result

if real is not None:
    setattr(owners[primitive], primitive, injected)
with io.atomic_dir(target) as tmp:
    (tmp / "a.txt").write_text("new")
    if primitive == "block":
        os.kill(os.getpid(), signal.SIGKILL)
    (tmp / "b.txt").write_text("new")
"""


def _version(folder):
    files = {p.name: p.read_text() for p in folder.iterdir()} if folder.is_dir() else {}
    assert set(files) == {"a.txt", "b.txt"} and len(set(files.values())) == 1, files
    return files["a.txt"]


@pytest.mark.parametrize("fallback", ["0", "1"])
@pytest.mark.parametrize(
    ("primitive", "when", "nth"),
    [
        ("block", "-", 0),
        ("exchange_paths", "before", 1),
        ("exchange_paths", "after", 1),
        ("replace", "before", 1),
        ("replace", "after", 1),
        ("replace", "after", 2),
        ("rmtree", "before", 1),
        ("rmtree", "after", 1),
    ],
)
def test_a_kill_at_any_moment_leaves_a_complete_folder(tmp_path, fallback, primitive, when, nth):
    import subprocess
    import sys

    if fallback == "1" and primitive == "exchange_paths":
        pytest.skip("the fallback does not call it")
    target = tmp_path / "artifact"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("old")
        (tmp / "b.txt").write_text("old")
    args = [str(target), primitive, when, str(nth), fallback]
    child = subprocess.run([sys.executable, "-c", KILLER, *args], capture_output=True, text=True)
    assert child.returncode in (-9, 0), child.stderr
    # the next write starts by tidying what a killed run left; the folder must be whole
    from deploybench.io import _remove_stale_temporaries

    _remove_stale_temporaries(target)
    assert _version(target) in ("old", "new")
    assert [p.name for p in tmp_path.iterdir()] == ["artifact"]
    if child.returncode == 0:  # no injection point was reached on this path
        assert _version(target) == "new"


def test_exchange_paths_swaps_two_folders_in_one_step(tmp_path):
    from deploybench.io import exchange_paths

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x").write_text("a")
    (tmp_path / "b").mkdir()
    if not exchange_paths(tmp_path / "a", tmp_path / "b"):
        pytest.skip("renameat2(RENAME_EXCHANGE) is not available here; the fallback is tested")
    assert (tmp_path / "b" / "x").read_text() == "a" and not list((tmp_path / "a").iterdir())
    with pytest.raises(FileNotFoundError):
        exchange_paths(tmp_path / "a", tmp_path / "missing")
