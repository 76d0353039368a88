"""The one setup call the notebooks make before they time anything."""

import threadpoolctl
import torch

from tnn_ref.bench.harness import cpu_model, setup_for_timing


def test_setup_for_timing_pins_threads():
    before = torch.get_num_threads()
    try:
        applied = setup_for_timing(1)
        assert applied["torch_threads"] == torch.get_num_threads() == 1
        blas = [pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"]
        assert applied["blas_threads"] == 1 and blas and all(count == 1 for count in blas)
    finally:
        torch.set_num_threads(before)


def test_cpu_model_reads_the_model_name(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9004\n\nprocessor\t: 1\n")
    assert cpu_model(str(cpuinfo)) == "AMD EPYC 9004"
    fallback = cpu_model(str(tmp_path / "absent"))  # no /proc/cpuinfo (macOS, Windows): what platform knows
    assert isinstance(fallback, str) and fallback
