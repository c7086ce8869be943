"""``make bench`` runs: a short run of the benchmark gives a positive rate and a full breakdown."""

from perun_vyper.tools import bench


def test_bench__short_run__prints_rate_breakdown_and_environment(tmp_path, capsys):
    bench.main(["--payments", "200", "--full-payments", "20", "--dir", str(tmp_path)])
    out = capsys.readouterr().out
    for fragment in ("synchronous=NORMAL:", "synchronous=FULL", "sign (2x)", "recover signer (2x)", "sqlite", "cpu"):
        assert fragment in out
    assert list(tmp_path.iterdir()) == []  # the temporary stores are removed


def test_bench__breakdown__parts_are_positive(tmp_path):
    parts = bench.breakdown(tmp_path, "NORMAL", calls=50)
    assert all(seconds > 0 for seconds in parts.values())
