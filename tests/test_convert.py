"""mloops convert: PyTorch checkpoints (ZIP and legacy, from torch, transformers and Lightning) and NumPy
files become safetensors equal, tensor by tensor, to torch.load(weights_only=True) or numpy.load; nothing in
the pickle is imported or called; malicious and inconsistent files are refused."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy
import pytest
import torch
from corpus.torch_archives import edit_member, torch_save_bytes, touch
from safetensors.numpy import load_file as load_numpy
from safetensors.torch import load_file

from mloops import Severity, UnsafeModelError
from mloops.cli import main
from mloops.mitigations.convert import ConvertError, convert


def flat(value: object, key: str = "") -> dict[str, torch.Tensor]:
    """torch.load's tensors under the dotted keys convert gives them."""
    if isinstance(value, torch.Tensor):
        return {key or "tensor": value}
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list | tuple) and any(isinstance(v, torch.Tensor | dict | list | tuple) for v in value):
        items = enumerate(value)
    else:
        return {}
    found: dict[str, torch.Tensor] = {}
    for k, v in items:
        found |= flat(v, f"{key}.{k}" if key else str(k))
    return found


def assert_same(converted: Path, checkpoint: Path) -> int:
    expected = flat(torch.load(checkpoint, weights_only=True))
    got = load_file(converted)
    assert got.keys() == expected.keys()
    for key, tensor in expected.items():
        assert got[key].dtype == tensor.dtype and torch.equal(got[key], tensor), key
    return len(got)


def awkward_state() -> dict[str, torch.Tensor]:
    """Views, dtypes and sharing a state dict may hold."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.BatchNorm1d(7))
    state = dict(net.state_dict())
    base = torch.arange(24.0).reshape(4, 6)
    state |= {
        "transposed": base.t(),
        "sliced": base[1:3, ::2],
        "expanded": torch.ones(3, 1).expand(3, 4),
        "shared_a": base[0],
        "shared_b": base[2],
        "bf16": torch.randn(3, dtype=torch.bfloat16),
        "half": torch.randn(2, 2, dtype=torch.float16),
        "int8": torch.tensor([-3, 4], dtype=torch.int8),
        "bool": torch.tensor([True, False]),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3),
        "parameter": torch.nn.Parameter(torch.ones(2)),
    }
    return state


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_torch_checkpoints_convert_tensor_for_tensor(tmp_path: Path, legacy: bool):
    checkpoint = tmp_path / "model.pt"
    torch.save(awkward_state(), checkpoint, _use_new_zipfile_serialization=not legacy)
    done = convert(str(checkpoint), str(tmp_path / "model.safetensors"))
    assert assert_same(tmp_path / "model.safetensors", checkpoint) == done.tensors == 19 and done.left_out == []


def test_a_transformers_checkpoint_converts(tmp_path: Path):
    from transformers import BertConfig, BertModel

    config = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, vocab_size=99)
    checkpoint = tmp_path / "pytorch_model.bin"  # what transformers 4 wrote; 5 writes safetensors itself
    torch.save(BertModel(config).state_dict(), checkpoint)
    convert(str(checkpoint), str(tmp_path / "model.safetensors"))
    assert assert_same(tmp_path / "model.safetensors", checkpoint) > 30


def test_a_lightning_checkpoint_converts_its_tensors_and_lists_the_rest(tmp_path: Path):
    import lightning

    class Tiny(lightning.LightningModule):
        def __init__(self, width: int = 4) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.layer = torch.nn.Linear(width, 1)

        def training_step(self, batch, _):
            return self.layer(batch[0]).pow(2).mean()

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters())

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.rand(8, 4)), batch_size=4)
    trainer = lightning.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                                enable_model_summary=False, default_root_dir=str(tmp_path))  # fmt: skip
    trainer.fit(Tiny(), data)
    checkpoint = tmp_path / "tiny.ckpt"
    trainer.save_checkpoint(checkpoint)
    done = convert(str(checkpoint), str(tmp_path / "tiny.safetensors"))
    assert assert_same(tmp_path / "tiny.safetensors", checkpoint) == done.tensors
    assert "state_dict.layer.weight" in load_file(tmp_path / "tiny.safetensors")
    assert "epoch: int" in done.left_out and "hyper_parameters.width: int" in done.left_out


def test_numpy_arrays_convert(tmp_path: Path):
    plain = numpy.arange(12.0).reshape(3, 4)
    fortran = numpy.asfortranarray(numpy.arange(12, dtype=numpy.int32).reshape(3, 4))
    numpy.save(tmp_path / "plain.npy", plain)
    numpy.save(tmp_path / "fortran.npy", fortran)
    numpy.savez_compressed(tmp_path / "both.npz", a=plain, b=numpy.array([True, False]))
    for name, expected in (("plain", {"array": plain}), ("fortran", {"array": fortran})):
        convert(str(tmp_path / f"{name}.npy"), str(tmp_path / f"{name}.safetensors"))
        got = load_numpy(tmp_path / f"{name}.safetensors")
        assert got.keys() == expected.keys() and (got["array"] == expected["array"]).all()
        assert got["array"].dtype == expected["array"].dtype
    convert(str(tmp_path / "both.npz"), str(tmp_path / "both.safetensors"))
    got = load_numpy(tmp_path / "both.safetensors")
    assert (got["a"] == plain).all() and got["b"].tolist() == [True, False]


def test_object_arrays_have_no_safetensors_form(tmp_path: Path):
    numpy.save(tmp_path / "objects.npy", numpy.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ConvertError, match="no safetensors equivalent"):
        convert(str(tmp_path / "objects.npy"), str(tmp_path / "out.safetensors"))


def test_a_malicious_checkpoint_is_refused_and_nothing_is_written(tmp_path: Path, capsys):
    marker = tmp_path / "marker"
    checkpoint = tmp_path / "evil.pt"
    checkpoint.write_bytes(torch_save_bytes({"w": torch.ones(2), "x": touch(marker)}))
    with pytest.raises(UnsafeModelError, match="MLO101"):
        convert(str(checkpoint), str(tmp_path / "evil.safetensors"))
    assert main(["convert", str(checkpoint)]) == 1
    assert "refused to load: MLO101" in capsys.readouterr().err
    assert not (tmp_path / "evil.safetensors").exists() and not marker.exists()


def test_nothing_in_the_pickle_is_imported_even_below_the_threshold(tmp_path: Path):
    """A class the scan does not know (a finding below CRITICAL) comes back as a stand-in: its module is not
    imported, its __setstate__ does not run."""
    (tmp_path / "victim_lib.py").write_text(
        f"import pathlib\nclass Thing:\n    def __setstate__(self, state):\n"
        f"        pathlib.Path({str(tmp_path / 'marker')!r}).touch()\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        import victim_lib

        thing = victim_lib.Thing()
        thing.value = 1
        checkpoint = tmp_path / "mixed.pt"
        torch.save({"w": torch.ones(3), "thing": thing}, checkpoint)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("victim_lib", None)
    done = convert(str(checkpoint), str(tmp_path / "mixed.safetensors"), Severity.CRITICAL)
    assert done.tensors == 1 and done.left_out == ["thing: an object of victim_lib.Thing"]
    assert "victim_lib" not in sys.modules and not (tmp_path / "marker").exists()


def test_a_tensor_reaching_past_its_storage_is_refused(tmp_path: Path):
    checkpoint = tmp_path / "short.pt"
    data = torch_save_bytes({"w": torch.arange(1000.0)})
    checkpoint.write_bytes(edit_member(data, "/data/0", lambda body: body[:100]))
    with pytest.raises(ConvertError, match="outside its storage"):
        convert(str(checkpoint), str(tmp_path / "short.safetensors"))
    assert not (tmp_path / "short.safetensors").exists()


def test_the_command_names_its_output_warns_of_what_it_left_out_and_never_overwrites(tmp_path: Path, capsys):
    checkpoint = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2), "step": 7}, checkpoint)
    assert main(["convert", str(checkpoint), "--to", "safetensors"]) == 0
    err = capsys.readouterr().err
    assert "left out (not a tensor): step: int" in err and "1 tensor(s), 8 bytes" in err
    assert torch.equal(load_file(tmp_path / "model.safetensors")["w"], torch.ones(2))
    assert main(["convert", str(checkpoint), "--output", str(checkpoint)]) == 2
    assert main(["convert", str(tmp_path / "absent.pt")]) == 2
    assert "absent.pt" in capsys.readouterr().err


@pytest.mark.parametrize("compress", [0, 3, ("gzip", 3), ("bz2", 3), ("xz", 3), ("lzma", 3)], ids=str)
def test_joblib_array_containers_convert_in_every_compression(tmp_path: Path, compress):
    import joblib

    arrays = {
        "weights": numpy.random.RandomState(0).rand(4, 5),
        "fortran": numpy.asfortranarray(numpy.arange(6, dtype=numpy.int64).reshape(2, 3)),
        "nested": {"mask": numpy.array([True, False, True])},
        "objects": numpy.array([1, "x"], dtype=object),
        "step": 3,
    }
    joblib.dump(arrays, tmp_path / "arrays.joblib", compress=compress)
    done = convert(str(tmp_path / "arrays.joblib"), str(tmp_path / "arrays.safetensors"))
    got = load_numpy(tmp_path / "arrays.safetensors")
    assert got.keys() == {"weights", "fortran", "nested.mask"}
    assert (got["weights"] == arrays["weights"]).all() and (got["fortran"] == arrays["fortran"]).all()
    assert got["nested.mask"].tolist() == [True, False, True]
    assert done.left_out == ["objects: an object of numpy.ndarray (objects)", "step: int"]


def test_joblib_arrays_of_dtypes_safetensors_cannot_hold_are_stepped_over_and_listed(tmp_path: Path):
    """Their size comes from the scanner's own reading of joblib's layout (the dtype's pickled state)."""
    import joblib
    import ml_dtypes

    arrays = {
        "before": numpy.arange(3.0),
        "bf16": numpy.ones(3, dtype=ml_dtypes.bfloat16),
        "strings": numpy.array(["x", "yy"], dtype=numpy.dtypes.StringDType()),
        "after": numpy.arange(4, dtype=numpy.int16),
    }
    joblib.dump(arrays, tmp_path / "mixed.joblib")
    done = convert(str(tmp_path / "mixed.joblib"), str(tmp_path / "mixed.safetensors"))
    got = load_numpy(tmp_path / "mixed.safetensors")
    assert (got["before"] == arrays["before"]).all() and (got["after"] == arrays["after"]).all()
    assert done.left_out == [
        "bf16: an object of numpy.ndarray (dtype <ml_dtypes.bfloat16)",
        "strings: an object of numpy.ndarray (objects)",
    ]


def test_a_joblib_model_is_not_an_array_container(tmp_path: Path):
    import joblib
    from sklearn.linear_model import LogisticRegression

    joblib.dump(LogisticRegression().fit(numpy.random.rand(20, 3), [0, 1] * 10), tmp_path / "model.joblib")
    with pytest.raises(ConvertError, match=r"it holds .*sklearn\.linear_model\._logistic\.LogisticRegression"):
        convert(str(tmp_path / "model.joblib"), str(tmp_path / "model.safetensors"))
