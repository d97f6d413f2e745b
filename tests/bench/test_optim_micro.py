"""bench/optim_micro.py runs end to end on shrunken parameter sets (never asserting on time),
so it cannot rot."""

import sys

import pytest

sys.path.insert(0, ".")


def test_optim_micro_runs_every_case(capsys):
    pytest.importorskip("torch")
    import torch  # noqa: PLC0415

    import ember  # noqa: PLC0415
    from bench import optim_micro  # noqa: PLC0415

    before = ember.get_num_threads(), torch.get_num_threads()
    try:
        results = optim_micro.main(["--threads", "1", "--repeats", "1", "--min-time", "0.001",
                                    "--scale", "0.05", "--clock", "cpu"])
    finally:
        ember.set_num_threads(before[0])
        torch.set_num_threads(before[1])
    assert set(results) == {"W1", "W4", "W5"}
    assert all(e > 0 and t > 0 for e, t in results.values())
    out = capsys.readouterr().out
    assert "W1 SGD" in out and "W4 Adam" in out and "W5 AdamW" in out and "ratio" in out


def test_optim_micro_steps_agree_with_torch():
    pytest.importorskip("torch")
    import numpy  # noqa: PLC0415

    from bench import optim_micro  # noqa: PLC0415

    for case in optim_micro.CASES:
        e_opt, t_opt = optim_micro.make_optimizers(case, scale=0.02)
        for _ in range(3):
            e_opt.step()
            t_opt.step()
        for e, t in zip(e_opt.param_groups[0]["params"], t_opt.param_groups[0]["params"]):
            numpy.testing.assert_allclose(e.detach().numpy(), t.detach().numpy(),
                                          rtol=1e-5, atol=1e-6)
