"""no_grad / enable_grad / set_grad_enabled / inference_mode as context managers and decorators."""

import ember


def _x():
    return ember.ones(2, requires_grad=True)


def test_no_grad_context_and_decorator():
    x = _x()
    with ember.no_grad():
        assert not (x * 2.0).requires_grad
        assert not ember.is_grad_enabled()
    assert ember.is_grad_enabled()

    @ember.no_grad()
    def f(t):
        return t * 2.0

    assert not f(x).requires_grad
    assert (x * 2.0).requires_grad


def test_enable_grad_inside_no_grad():
    x = _x()
    with ember.no_grad():
        with ember.enable_grad():
            assert (x * 2.0).requires_grad
        assert not (x * 2.0).requires_grad


def test_set_grad_enabled_function_context_and_decorator():
    x = _x()
    with ember.set_grad_enabled(False):
        assert not (x * 2.0).requires_grad
    assert ember.is_grad_enabled()
    ember.set_grad_enabled(False)
    try:
        assert not ember.is_grad_enabled()
    finally:
        ember.set_grad_enabled(True)

    @ember.set_grad_enabled(False)
    def g(t):
        return t * 2.0

    assert ember.is_grad_enabled()
    assert not g(x).requires_grad


def test_inference_mode():
    x = _x()
    with ember.inference_mode():
        assert ember.is_inference_mode_enabled()
        assert not (x * 2.0).requires_grad
    assert not ember.is_inference_mode_enabled()

    @ember.inference_mode()
    def h(t):
        return t * 2.0

    assert not h(x).requires_grad


def test_mode_restored_after_exception():
    try:
        with ember.no_grad():
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert ember.is_grad_enabled()
