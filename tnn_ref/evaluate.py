"""`python -m tnn_ref.evaluate CHECKPOINT`: score a trained checkpoint at one or more lengths (also under torchrun).

The command line lives in `tnn_ref.training.cli`; the evaluation in `tnn_ref.training.evaluate`.
"""

from tnn_ref.training.cli import evaluate_main

if __name__ == "__main__":
    evaluate_main()
