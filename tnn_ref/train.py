"""`python -m tnn_ref.train`: train a language model from the command line (also under torchrun).

The command line lives in `tnn_ref.training.cli`; the training loop in `tnn_ref.training.loop`.
"""

from tnn_ref.training.cli import train_main

if __name__ == "__main__":
    train_main()
