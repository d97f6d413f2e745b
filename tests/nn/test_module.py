"""nn.Module: registration, traversal, state_dict, hooks, modes, repr, lazy layers."""

import collections
import copy

import numpy
import pytest
import torch

import ember
from ember import errors, nn


class Net(nn.Module):
    def __init__(self, hidden=5):
        super().__init__()
        self.fc1 = nn.Linear(4, hidden)
        self.fc2 = nn.Linear(hidden, 3)
        self.scale = nn.Parameter(ember.ones(3))
        self.register_buffer("steps", ember.zeros(2))
        self.register_buffer("cache", ember.zeros(1), persistent=False)

    def forward(self, x):
        return self.fc2(self.fc1(x).relu()) * self.scale


class TorchNet(torch.nn.Module):
    def __init__(self, hidden=5):
        super().__init__()
        self.fc1 = torch.nn.Linear(4, hidden)
        self.fc2 = torch.nn.Linear(hidden, 3)
        self.scale = torch.nn.Parameter(torch.ones(3))
        self.register_buffer("steps", torch.zeros(2))
        self.register_buffer("cache", torch.zeros(1), persistent=False)

    def forward(self, x):
        return self.fc2(self.fc1(x).relu()) * self.scale


def test_registration_and_traversal():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == [
        "scale", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert [n for n, _ in net.named_parameters(recurse=False)] == ["scale"]
    assert [n for n, _ in net.named_buffers()] == ["steps", "cache"]
    assert [n for n, _ in net.named_children()] == ["fc1", "fc2"]
    assert [n for n, _ in net.named_modules()] == ["", "fc1", "fc2"]
    assert net.fc1 is net.get_submodule("fc1")
    assert net.get_parameter("fc2.bias") is net.fc2.bias
    del net.fc2
    assert "fc2" not in dict(net.named_children())
    with pytest.raises(AttributeError):
        net.fc2  # noqa: B018


def test_torch_order_matches():
    names = [n for n, _ in Net().named_parameters()]
    assert names == [n for n, _ in TorchNet().named_parameters()]
    assert list(Net().state_dict()) == list(TorchNet().state_dict())


def test_shared_parameters_listed_once():
    net = nn.Module()
    net.a = nn.Linear(3, 3)
    net.b = nn.Linear(3, 3)
    net.b.weight = net.a.weight
    assert len(list(net.parameters())) == 3
    assert len(list(net.named_parameters(remove_duplicate=False))) == 4


def test_assignment_errors():
    net = Net()
    with pytest.raises(TypeError, match="nn.Parameter or None expected"):
        net.scale = ember.ones(3)
    net.scale = None
    assert net.scale is None
    with pytest.raises(KeyError, match="can't be empty or contain"):
        net.register_buffer("a.b", ember.zeros(1))

    class Forgot(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match="super\\(\\).__init__\\(\\)"):
        Forgot()


def test_state_dict_round_trip_and_detached():
    a, b = Net(), Net()
    sd = a.state_dict()
    assert list(sd) == ["scale", "steps", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert not sd["fc1.weight"].requires_grad
    assert sd["fc1.weight"].data_ptr() == a.fc1.weight.data_ptr()
    result = b.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    x = ember.randn(2, 4)
    numpy.testing.assert_array_equal(a(x).detach().numpy(), b(x).detach().numpy())
    # Loading copies: the two models do not share storage afterwards.
    assert b.fc1.weight.data_ptr() != a.fc1.weight.data_ptr()


def test_load_state_dict_reports_all_problems_at_once():
    sd = Net().state_dict()
    del sd["fc2.bias"]
    del sd["steps"]
    sd["fc3.weight"] = ember.zeros(1)
    sd["fc1.extra"] = ember.zeros(1)
    sd["fc1.weight"] = ember.zeros(7, 4)
    with pytest.raises(errors.ModuleError) as info:
        Net().load_state_dict(sd)
    msg = str(info.value)
    assert "missing keys (2): 'steps', 'fc2.bias'" in msg
    assert "unexpected keys (2)" in msg and "'fc3.weight'" in msg and "'fc1.extra'" in msg
    assert "'fc1.weight': checkpoint has (7, 4), model has (5, 4)" in msg
    assert "strict=False" in msg


def test_load_state_dict_non_strict():
    sd = Net().state_dict()
    del sd["fc2.bias"]
    sd["other"] = ember.zeros(1)
    missing, unexpected = Net().load_state_dict(sd, strict=False)
    assert missing == ["fc2.bias"] and unexpected == ["other"]
    sd["fc1.bias"] = ember.zeros(9)
    with pytest.raises(errors.ModuleError, match="shape mismatches"):
        Net().load_state_dict(sd, strict=False)


def test_load_torch_state_dict_as_numpy_gives_equal_outputs():
    torch.manual_seed(0)
    tnet = TorchNet()
    with torch.no_grad():
        tnet.scale.uniform_(0.5, 1.5)
    net = Net()
    net.load_state_dict({k: v.numpy() for k, v in tnet.state_dict().items()})
    x = numpy.random.default_rng(0).standard_normal((6, 4)).astype(numpy.float32)
    expected = tnet(torch.tensor(x)).detach().numpy()
    numpy.testing.assert_allclose(net(ember.tensor(x)).detach().numpy(), expected, rtol=1e-5,
                                  atol=1e-6)


def test_hooks_can_modify_and_be_removed():
    net = nn.Linear(3, 2)
    seen = []
    pre = net.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    post = net.register_forward_hook(lambda m, args, out: seen.append(out.shape) or out + 1)
    out = net(ember.ones(4, 3))
    expected = net.bias.detach().numpy() + 1
    numpy.testing.assert_allclose(out.detach().numpy(), numpy.broadcast_to(expected, (4, 2)))
    assert seen == [ember.Size([4, 2])]
    pre.remove()
    post.remove()
    assert not net._forward_hooks and not net._forward_pre_hooks
    with net.register_forward_hook(lambda m, a, o: o * 0):
        assert float(net(ember.ones(1, 3)).abs().sum() if hasattr(ember.Tensor, "abs")
                     else (net(ember.ones(1, 3)) * 0).sum()) == 0.0
    assert not net._forward_hooks


def test_train_eval_propagates():
    net = Net()
    assert net.training and net.fc1.training
    assert net.eval() is net
    assert not net.training and not net.fc1.training and not net.fc2.training
    net.train()
    assert net.fc2.training
    with pytest.raises(ValueError):
        net.train("yes")


def test_zero_grad_requires_grad_apply():
    net = Net()
    net(ember.randn(2, 4)).sum().backward()
    assert net.fc1.weight.grad is not None
    net.zero_grad(set_to_none=False)
    assert float(net.fc1.weight.grad.sum()) == 0.0
    net.zero_grad()
    assert net.fc1.weight.grad is None
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())
    visited = []
    net.apply(lambda m: visited.append(type(m).__name__))
    assert visited == ["Linear", "Linear", "Net"]


def test_to_dtype_keeps_parameter_objects():
    net = Net()
    w = net.fc1.weight
    net.double()
    assert net.fc1.weight is w and w.dtype == ember.float64 and net.steps.dtype == ember.float64
    assert isinstance(net.fc1.weight, nn.Parameter)
    out = net(ember.randn(2, 4, dtype=ember.float64))
    assert out.dtype == ember.float64
    net.to(ember.float32)
    assert w.dtype == ember.float32
    with pytest.raises(errors.DTypeError):
        net.to(ember.int64)


def test_repr_matches_torch():
    e = nn.Sequential(collections.OrderedDict([("body", Net()), ("head", nn.Linear(3, 1))]))
    t = torch.nn.Sequential(collections.OrderedDict([("body", TorchNet()),
                                                     ("head", torch.nn.Linear(3, 1))]))
    assert repr(e).replace("Net", "X") == repr(t).replace("TorchNet", "X")


def test_deepcopy_keeps_names_and_values():
    net = Net()
    clone = copy.deepcopy(net)
    assert isinstance(clone.fc1.weight, nn.Parameter)
    assert clone.fc1.weight is not net.fc1.weight
    assert clone.fc1._qualified_name() == "fc1"
    numpy.testing.assert_array_equal(clone.fc1.weight.detach().numpy(),
                                     net.fc1.weight.detach().numpy())


def test_lazy_linear_materializes_from_first_input():
    model = nn.Sequential(nn.Linear(out_features=6), nn.Linear(out_features=2))
    with pytest.raises(errors.ModuleError, match=(
            r"Linear\(in_features=None, out_features=6, bias=True\) '0.weight' has not been "
            r"built yet: run one forward pass \(or model.build\(example_input\)\)")):
        model[0].weight + 1
    params = list(model.parameters())
    x = ember.randn(5, 7)
    ember.manual_seed(3)
    out = model(x)
    assert out.shape == (5, 2) and model[0].in_features == 7 and model[1].in_features == 6
    assert params[0] is model[0].weight and type(params[0]) is nn.Parameter
    assert params[0].shape == (6, 7) and params[0].requires_grad
    assert not model[0]._forward_pre_hooks  # the lazy hook removed itself
    # Same seed -> same initialization, and PyTorch's default bounds.
    ember.manual_seed(3)
    other = nn.Linear(7, 6)
    numpy.testing.assert_array_equal(other.weight.detach().numpy(),
                                     model[0].weight.detach().numpy())
    assert float(abs(model[0].weight.detach().numpy()).max()) <= 1 / 7**0.5


def test_build_and_lazy_state_dict_loading():
    model = nn.Sequential(nn.Linear(out_features=4), nn.Linear(out_features=2, bias=False))
    model.eval().build(ember.zeros(1, 3))
    assert model[0].weight.shape == (4, 3) and not model.training
    assert model[1].bias is None
    fresh = nn.Sequential(nn.Linear(out_features=4), nn.Linear(out_features=2, bias=False))
    fresh.load_state_dict(model.state_dict())
    assert fresh[0].in_features == 3 and fresh[1].in_features == 4
    x = ember.randn(2, 3)
    numpy.testing.assert_array_equal(fresh(x).detach().numpy(), model(x).detach().numpy())
