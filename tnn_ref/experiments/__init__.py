"""What the notebooks' experiments share: where figures go (and quick mode), and measured long-range runs,
which train (`tnn_ref.training`) and measure (`tnn_ref.bench`) in the same run.
"""
