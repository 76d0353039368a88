"""Quick mode writes no figures; full mode writes PNGs where TNN_FIGURES_DIR says."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tnn_ref.experiments.figures import quick_mode, save_figure  # noqa: E402


def test_quick_mode_reads_environment(monkeypatch):
    for value, expected in [("1", True), ("true", True), ("0", False), ("", False)]:
        monkeypatch.setenv("TNN_QUICK", value)
        assert quick_mode() is expected
    monkeypatch.delenv("TNN_QUICK")
    assert quick_mode() is False


def test_save_figure_only_in_full_mode(monkeypatch, tmp_path):
    monkeypatch.setenv("TNN_FIGURES_DIR", str(tmp_path))
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    monkeypatch.setenv("TNN_QUICK", "1")
    assert save_figure(fig, "quick") is None and not (tmp_path / "quick.png").exists()
    monkeypatch.setenv("TNN_QUICK", "0")
    path = save_figure(fig, "full")
    assert path == tmp_path / "full.png" and path.read_bytes()[:4] == b"\x89PNG"
    plt.close(fig)
