"""The tracer records every op of a forward run, in order, with shapes, attributes and the
origin of each tensor."""

import pytest

import ember
from ember.graph import trace


def test_ops_shapes_and_constants_are_recorded():
    w = ember.randn(3, 4)

    def f(x):
        return (x @ w).exp().sum(1)

    g = trace(f, ember.randn(2, 3))
    assert [n.op_name for n in g.nodes] == ["MatMul", "Exp", "Sum"]
    assert g.inputs[0].shape == (2, 3) and g.outputs[0].shape == (2,)
    assert g.nodes[0].inputs[0] is g.inputs[0]
    assert g.nodes[0].inputs[1].kind == "const" and g.nodes[0].inputs[1].data is w._data
    args, kwargs = g.nodes[2].attributes
    assert args == [(1,), False, None]
    assert g.nodes[1].inputs[0] is g.nodes[0].outputs[0]


def test_dead_code_is_pruned():
    def f(x):
        _ = x.exp()
        return x * 2.0

    g = trace(f, ember.ones(2))
    assert [n.op_name for n in g.nodes] == ["Mul"]
    assert len(trace(f, ember.ones(2), prune=False).nodes) == 2


def test_tracing_does_not_record_gradients_and_stops_after():
    x = ember.ones(2, requires_grad=True)
    g = trace(lambda t: t * 3.0, x)
    assert len(g.nodes) == 1
    from ember.autograd.function import _Tracing

    assert _Tracing.tracer is None


def test_multiple_inputs_and_outputs():
    g = trace(lambda a, b: (a + b, a * b), ember.ones(2), ember.ones(2))
    assert [v.name for v in g.inputs] == ["input0", "input1"]
    assert len(g.outputs) == 2


def test_non_tensor_output_is_an_error():
    with pytest.raises(TypeError, match="outputs must be Tensors"):
        trace(lambda a: 3, ember.ones(1))


def test_nodes_carry_the_layer_path_and_params_are_named():
    from ember import nn

    model = nn.Sequential(nn.Linear(3, 4), nn.Sequential(nn.Linear(4, 2)))
    g = trace(model, ember.randn(5, 3))
    scopes = {n.scope for n in g.nodes}
    assert scopes == {"0", "1.0"}
    assert {p.name for p in g.params} == {"0.weight", "0.bias", "1.0.weight", "1.0.bias"}
    assert all(p.kind == "param" for p in g.params)
    assert model.training  # restored after tracing in eval mode


def test_in_place_ops_are_followed():
    def f(x):
        h = x * 2.0
        h.add_(1.0)
        return h.exp()

    g = trace(f, ember.ones(3))
    exp = g.nodes[-1]
    assert exp.op_name == "Exp" and exp.inputs[0].producer.op_name != "Mul"
