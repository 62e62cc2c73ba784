"""`python -m babilab.cli` (what torchrun and accelerate launch run): the `babilab` command."""

from . import run

if __name__ == "__main__":
    run()
