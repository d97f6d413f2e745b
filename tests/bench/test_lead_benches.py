"""The overhead, GEMM and checkpoint-memory bench scripts run end to end on tiny settings (never
asserting on time), so they cannot rot."""

import sys

import pytest

sys.path.insert(0, ".")

from bench import checkpoint_memory, overhead  # noqa: E402



def test_checkpoint_memory_bench_runs_and_saves_memory():
    # deep enough that the kept segment ends cost less than the activations they replace
    # (at 8 layers, with Linear + ReLU one node keeping no mask, they are even)
    rows = checkpoint_memory.main(["--layers", "16", "--width", "64", "--batch", "256"])
    peaks = {segments: peak for segments, peak, _ in rows}
    assert set(peaks) == {0, 4, 8}
    assert peaks[4] < peaks[0]


def test_overhead_bench_runs(tmp_path, capsys):
    pytest.importorskip("torch")
    out = tmp_path / "bench.md"
    overhead.main(["--repeats", "1", "--min-time", "0.001", "--write", str(out)])
    text = out.read_text()
    assert "## Eager overhead" in text and "MLP 784-512-512-10 step" in text
    assert "add fwd+bwd" in capsys.readouterr().out


def test_gemm_bench_times_every_product_in_both_libraries():
    pytest.importorskip("torch")
    from bench import gemm_micro  # noqa: PLC0415

    rows = gemm_micro.main(["--repeats", "1", "--min-time", "0.001", "--clock", "cpu"])
    assert len(rows) == 4 * len(gemm_micro.SHAPES)
    assert all(ours > 0 and blas > 0 and theirs > 0 for _, ours, blas, theirs in rows)
