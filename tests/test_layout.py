"""The package's layout as users meet it: the commands answer --help, the model imports no plotting or task stack."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["tnn_ref.train", "tnn_ref.evaluate", "tnn_ref.bench"])
def test_commands_answer_help(module):
    done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"python -m {module}" in done.stdout


def test_the_model_layer_imports_only_its_numeric_stack():
    # what `pip install tnn_ref` brings must be enough for the model, its decoders and the baselines
    code = ("import sys, tnn_ref.model, tnn_ref.decoding, tnn_ref.baselines, tnn_ref.ssm; "
            "print(sorted(m for m in ('matplotlib', 'sklearn', 'tokenizers', 'datasets', 'tnn_ref.tasks', "
            "'tnn_ref.training', 'tnn_ref.bench', 'tnn_ref.experiments') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
