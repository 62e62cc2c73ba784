"""`python -m babilab`: the same command line as `babilab`."""

from .cli import run

if __name__ == "__main__":
    run()
