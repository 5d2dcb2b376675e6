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
