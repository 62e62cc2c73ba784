"""babilab: generate BABILong, evaluate any model on it, train recurrent-memory models, report.

Public functions live here; each has one CLI verb (`babilab --help`). Importing babilab
never imports torch or an HTTP client: heavy parts load when they are first used.
"""

from .babi import generate_stories, iter_qas, read_file, write_files
from .errors import BabilabError
from .train import train

__version__ = "0.1.0"

__all__ = ["BabilabError", "__version__", "generate_stories", "iter_qas", "read_file", "train",
           "write_files"]
