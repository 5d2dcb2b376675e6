"""Feeds: named inputs kept by name and order through a file, and refused when inconsistent."""

import numpy as np
import pytest
from deploybench.errors import ConfigError, InputFileError
from deploybench.feeds import feed_count, in_order, load_feeds, named_outputs, save_feeds
from deploybench.io import save_npz


def test_names_order_and_dtypes_survive_the_file(tmp_path):
    # names a file format could mangle, in an order that is not sorted
    feeds = {
        "z/ids.0": np.arange(6, dtype=np.int64).reshape(3, 2),
        "a mask": np.ones((3, 2), bool),
        "image": np.zeros((3, 1, 2, 2), np.float16),
    }
    save_feeds(tmp_path / "f.npz", feeds, image_names=np.asarray(["a", "b", "c"]))
    loaded = load_feeds(tmp_path / "f.npz")
    assert list(loaded) == list(feeds)
    for name, value in feeds.items():
        assert loaded[name].dtype == value.dtype
        np.testing.assert_array_equal(loaded[name], value)


def test_inputs_that_disagree_on_the_number_of_samples_are_refused(tmp_path):
    with pytest.raises(ValueError, match="disagree on the number of samples"):
        save_feeds(tmp_path / "f.npz", {"a": np.zeros(3), "b": np.zeros(4)})
    assert not (tmp_path / "f.npz").exists()
    assert feed_count({"a": np.zeros((5, 2)), "b": np.zeros(5)}) == 5


def test_a_file_from_before_named_inputs_is_one_line_naming_the_fix(tmp_path):
    save_npz(tmp_path / "old.npz", evaluation=np.zeros((2, 3)))
    with pytest.raises(InputFileError, match="no named inputs.*delete it and rerun"):
        load_feeds(tmp_path / "old.npz")


def test_feeds_are_put_in_the_graphs_order_or_refused_naming_both_signatures():
    feeds = {"x": np.zeros(1), "mask": np.ones(1)}
    assert [v[0] for v in in_order(feeds, ["mask", "x"])] == [1.0, 0.0]
    with pytest.raises(ConfigError, match=r"inputs \(x\) do not match the graph's \(mask, x\)"):
        in_order({"x": np.zeros(1)}, ["mask", "x"], "the graph")


def test_outputs_are_named_by_a_models_own_keys_else_by_the_tasks_names():
    def names(count):
        return [f"o{i}" for i in range(count)]

    assert list(named_outputs({"out": 1, "aux": 2}, names)) == ["out", "aux"]
    assert named_outputs((1, 2), names) == {"o0": 1, "o1": 2}
    assert named_outputs(7, names) == {"o0": 7}
