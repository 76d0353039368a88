"""Training and evaluation: the loop, LM evaluation over windows, sharding under torchrun, the command lines.

`python -m tnn_ref.train` and `python -m tnn_ref.evaluate` are thin entry points into `tnn_ref.training.cli`.
"""
