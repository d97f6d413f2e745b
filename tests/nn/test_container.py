"""Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict."""

import collections

import numpy
import pytest
import torch

import ember
from ember import nn


def _seq():
    return nn.Sequential(nn.Linear(2, 3), nn.Identity(), nn.Linear(3, 4))


def test_sequential_forward_and_indexing():
    s = _seq()
    assert s(ember.ones(5, 2)).shape == (5, 4)
    assert len(s) == 3 and s[-1] is s[2] and s[0].out_features == 3
    part = s[1:]
    assert isinstance(part, nn.Sequential) and len(part) == 2 and part[1] is s[2]
    assert list(part._modules) == ["1", "2"]  # slices keep names, like PyTorch
    assert [type(m).__name__ for m in s] == ["Linear", "Identity", "Linear"]
    with pytest.raises(IndexError, match="out of range for Sequential of length 3"):
        s[3]  # noqa: B018


def test_sequential_mutation_renumbers():
    s = _seq()
    last = nn.Linear(4, 1)
    s.append(last)
    assert s[3] is last and list(s._modules) == ["0", "1", "2", "3"]
    first = nn.Identity()
    s.insert(0, first)
    assert s[0] is first and s[4] is last and list(s._modules) == ["0", "1", "2", "3", "4"]
    del s[0]
    assert s[3] is last and list(s._modules) == ["0", "1", "2", "3"]
    s.extend([nn.Identity(), nn.Identity()])
    assert len(s) == 6
    popped = s.pop()
    assert isinstance(popped, nn.Identity) and len(s) == 5
    s[1] = nn.Linear(3, 3)
    assert s[1].in_features == 3


def test_sequential_ordered_dict_and_state_dict_keys_match_torch():
    e = nn.Sequential(collections.OrderedDict([("fc", nn.Linear(2, 3)), ("out", nn.Linear(3, 1))]))
    t = torch.nn.Sequential(collections.OrderedDict(
        [("fc", torch.nn.Linear(2, 3)), ("out", torch.nn.Linear(3, 1))]))
    assert e.fc.in_features == 2
    assert list(e.state_dict()) == list(t.state_dict())
    assert repr(e) == repr(t)
    e.load_state_dict({k: v.numpy() for k, v in t.state_dict().items()})
    x = numpy.ones((4, 2), numpy.float32)
    numpy.testing.assert_allclose(e(ember.tensor(x)).detach().numpy(),
                                  t(torch.tensor(x)).detach().numpy(), rtol=1e-6)


def test_module_list():
    layers = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])
    assert len(layers) == 3 and len(list(layers.parameters())) == 6
    layers.append(nn.Linear(4, 2))
    layers.insert(0, nn.Identity())
    assert isinstance(layers[0], nn.Identity) and layers[-1].out_features == 2
    assert isinstance(layers[1:3], nn.ModuleList) and len(layers[1:3]) == 2
    del layers[0]
    assert list(layers._modules) == ["0", "1", "2", "3"]
    layers += [nn.Identity()]
    assert len(layers) == 5
    owner = nn.Module()
    owner.blocks = layers
    assert "blocks.3.weight" in owner.state_dict()
    with pytest.raises(NotImplementedError, match="iterate over it"):
        layers(ember.ones(1))


def test_module_dict():
    heads = nn.ModuleDict({"cls": nn.Linear(8, 10), "box": nn.Linear(8, 4)})
    assert heads["box"].out_features == 4 and "cls" in heads and len(heads) == 2
    assert list(heads.keys()) == ["cls", "box"]
    heads["extra"] = nn.Identity()
    heads.update([("more", nn.Identity())])
    assert list(heads) == ["cls", "box", "extra", "more"]
    assert isinstance(heads.pop("extra"), nn.Identity) and "extra" not in heads
    assert [n for n, _ in heads.named_parameters()][:2] == ["cls.weight", "cls.bias"]


def test_parameter_list_and_dict():
    ps = nn.ParameterList([nn.Parameter(ember.ones(2)), ember.zeros(3)])
    assert len(ps) == 2 and isinstance(ps[1], nn.Parameter) and ps[1].requires_grad
    ps.append(ember.ones(1))
    assert [n for n, _ in ps.named_parameters()] == ["0", "1", "2"]
    pd = nn.ParameterDict({"scale": ember.ones(1)})
    pd["shift"] = nn.Parameter(ember.zeros(1))
    assert list(pd) == ["scale", "shift"] and isinstance(pd["scale"], nn.Parameter)
    owner = nn.Module()
    owner.ps = ps
    owner.pd = pd
    assert list(owner.state_dict()) == ["ps.0", "ps.1", "ps.2", "pd.scale", "pd.shift"]
