"""Training checkpoints: model, optimizer, scheduler, counters and random-generator state in
one atomic file, so a resumed run continues exactly as if it had never stopped."""

from ember import random
from ember.io import serialization


def save_checkpoint(path, model=None, optimizer=None, scheduler=None, epoch=None, step=None,
                    extra=None):
    """Write everything needed to resume training to ``path`` (atomically)."""
    state = {
        "model": None if model is None else model.state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "epoch": epoch,
        "step": step,
        "rng": _rng_state(),
        "extra": extra,
    }
    serialization.save(state, path)


def load_checkpoint(path, model=None, optimizer=None, scheduler=None, strict=True,
                    restore_rng=True):
    """Restore what ``save_checkpoint`` wrote into the given objects; returns the checkpoint
    dict (with "epoch", "step" and "extra")."""
    state = serialization.load(path)
    if not isinstance(state, dict) or "rng" not in state:
        raise serialization.CheckpointError(
            f"{path}: not a training checkpoint written by ember.io.save_checkpoint"
        )
    for name, obj in (("model", model), ("optimizer", optimizer), ("scheduler", scheduler)):
        if obj is None:
            continue
        if state.get(name) is None:
            raise serialization.CheckpointError(f"{path}: the checkpoint holds no {name} state")
        if name == "model":
            obj.load_state_dict(state[name], strict=strict)
        else:
            obj.load_state_dict(state[name])
    if restore_rng:
        _set_rng_state(state["rng"])
    return state


def _rng_state():
    import numpy  # noqa: PLC0415

    legacy = numpy.random.get_state()
    return {"ember": random.get_rng_state(),
            "numpy": {"keys": legacy[1].astype(numpy.int64), "pos": int(legacy[2]),
                      "has_gauss": int(legacy[3]),
                      "cached_gaussian": float(legacy[4])}}


def _set_rng_state(state):
    import numpy  # noqa: PLC0415

    random.set_rng_state(state["ember"])
    np_state = state.get("numpy")
    if np_state is not None:
        numpy.random.set_state(("MT19937", numpy.asarray(np_state["keys"], dtype=numpy.uint32),
                                np_state["pos"], np_state["has_gauss"],
                                np_state["cached_gaussian"]))
