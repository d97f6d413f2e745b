"""ember.save / ember.load: round trips, interop with the safetensors library and PyTorch,
and hostile or damaged files that must give a CheckpointError naming the file."""

import json
import os
import struct

import numpy
import pytest
import safetensors.numpy
import safetensors.torch
import torch

import ember
from ember.io import CheckpointError


def test_round_trip_of_nested_structures(tmp_path):
    obj = {
        "weights": ember.randn(3, 4),
        "ints": ember.arange(5),
        "flags": ember.tensor([True, False]),
        "half": ember.ones(2, dtype=ember.float16),
        "meta": {"epoch": 3, "lr": 0.01, "name": "run", "done": False, "none": None},
        "list": [ember.zeros(0), (1, 2.5), "x"],
        7: {"by_int_key": numpy.arange(4.0)},
        "nan": float("nan"),
    }
    path = tmp_path / "obj.safetensors"
    ember.save(obj, path)
    back = ember.load(path)
    numpy.testing.assert_array_equal(back["weights"].numpy(), obj["weights"].numpy())
    assert back["ints"].dtype == ember.int64 and back["flags"].dtype == ember.bool
    assert back["half"].dtype == ember.float16
    assert back["meta"] == obj["meta"]
    assert back["list"][0].shape == (0,) and back["list"][1] == (1, 2.5) and back["list"][2] == "x"
    assert isinstance(back[7]["by_int_key"], numpy.ndarray)
    assert numpy.isnan(back["nan"])


def test_single_tensor_round_trip(tmp_path):
    t = ember.randn(2, 2, dtype=ember.float64)
    ember.save(t, tmp_path / "t.st")
    numpy.testing.assert_array_equal(ember.load(tmp_path / "t.st").numpy(), t.numpy())


def test_unsupported_values_are_refused_before_writing(tmp_path):
    path = tmp_path / "x.st"
    with pytest.raises(ember.errors.DTypeError, match="cannot store a object.*no pickle"):
        ember.save({"bad": object()}, path)
    assert not path.exists()


def test_files_are_plain_safetensors_for_other_readers(tmp_path):
    sd = {"fc.weight": ember.randn(4, 3), "fc.bias": ember.zeros(4)}
    ember.save(sd, tmp_path / "sd.safetensors")
    as_numpy = safetensors.numpy.load_file(str(tmp_path / "sd.safetensors"))
    as_torch = safetensors.torch.load_file(str(tmp_path / "sd.safetensors"))
    assert set(as_numpy) == set(as_torch) == {"fc.weight", "fc.bias"}
    numpy.testing.assert_array_equal(as_torch["fc.weight"].numpy(), sd["fc.weight"].numpy())


def test_pytorch_safetensors_file_loads_as_dict_of_tensors(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    path = str(tmp_path / "torch.safetensors")
    safetensors.torch.save_file(model.state_dict(), path)
    loaded = ember.load(path)
    assert set(loaded) == set(model.state_dict())
    for k, v in model.state_dict().items():
        numpy.testing.assert_array_equal(loaded[k].numpy(), v.numpy())


def _write_raw(path, header, data=b""):
    head = json.dumps(header).encode() if not isinstance(header, bytes) else header
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + data)


def test_duplicated_tensor_name_is_refused(tmp_path):
    path = tmp_path / "dup.st"
    entry = '{"dtype":"F32","shape":[1],"data_offsets":[0,4]}'
    _write_raw(path, ('{"w":' + entry + ',"w":' + entry + "}").encode(), b"\0" * 4)
    with pytest.raises(CheckpointError, match=r"dup.st: the header names 'w' twice"):
        ember.load(path)


def test_truncated_file_names_the_file(tmp_path):
    path = tmp_path / "cut.st"
    ember.save({"w": ember.randn(100)}, path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 10])
    with pytest.raises(CheckpointError, match=r"cut.st: tensor 'w' points at bytes"):
        ember.load(path)
    path.write_bytes(raw[:5])
    with pytest.raises(CheckpointError, match="too short"):
        ember.load(path)
    path.write_bytes(raw[:40])
    with pytest.raises(CheckpointError, match="truncated"):
        ember.load(path)


def test_flipped_byte_fails_the_checksum(tmp_path):
    path = tmp_path / "flip.st"
    ember.save({"w": ember.randn(50)}, path)
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="checksum"):
        ember.load(path)


def test_declared_shape_must_match_the_data(tmp_path):
    path = tmp_path / "shape.st"
    _write_raw(path, {"w": {"dtype": "F32", "shape": [1000000], "data_offsets": [0, 8]}},
               b"\0" * 8)
    with pytest.raises(CheckpointError, match=r"declares shape \(1000000,\)"):
        ember.load(path)


def test_overlapping_tensors_are_refused(tmp_path):
    path = tmp_path / "overlap.st"
    _write_raw(path, {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                      "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12)
    with pytest.raises(CheckpointError, match="overlap"):
        ember.load(path)


def test_fuzzed_bytes_give_checkpoint_errors_not_crashes(tmp_path):
    path = tmp_path / "fuzz.st"
    ember.save({"w": ember.randn(8), "meta": {"a": [1, 2]}}, path)
    original = path.read_bytes()
    rng = numpy.random.default_rng(0)
    outcomes = set()
    for trial in range(300):
        raw = bytearray(original)
        for _ in range(int(rng.integers(1, 4))):
            raw[int(rng.integers(0, len(raw)))] = int(rng.integers(0, 256))
        if trial % 5 == 0:
            raw = raw[: int(rng.integers(0, len(raw)))]
        path.write_bytes(bytes(raw))
        try:
            ember.load(path)
            outcomes.add("loaded")
        except CheckpointError as exc:
            assert str(path) in str(exc)
            outcomes.add("error")
    assert "error" in outcomes


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        ember.load(tmp_path / "nope.st")


def test_no_temporary_files_left_behind(tmp_path):
    ember.save({"w": ember.ones(3)}, tmp_path / "a.st")
    ember.save({"w": ember.ones(4)}, tmp_path / "a.st")
    assert os.listdir(tmp_path) == ["a.st"]
