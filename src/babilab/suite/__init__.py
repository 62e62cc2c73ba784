"""BABILong suites: tasks x lengths x samples, built reproducibly, cached, read as streams.

files.py   the on-disk format: Sample, Suite (reading), SuiteWriter (atomic writing)
build.py   generate_suite: bAbI questions hidden in background books, token-exact
official.py  the published RMT-team/babilong sets, loaded into the same format
hub.py     export_hub: a suite in the hub layout (config per length, split per task)
"""

from typing import TYPE_CHECKING

from .build import GenerateConfig, generate_suite, suite_fingerprint
from .files import (
    SUITE_FORMAT,
    Sample,
    Suite,
    SuiteWriter,
    length_name,
    parse_length,
    sort_lengths,
    sort_tasks,
)
from .official import load_official

if TYPE_CHECKING:
    from .hub import export_hub


def __getattr__(name: str):
    # export_hub loads on first use: hub.py brings PyYAML, 15 ms that `generate` never needs
    if name == "export_hub":
        from .hub import export_hub

        return export_hub
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "SUITE_FORMAT", "GenerateConfig", "Sample", "Suite", "SuiteWriter", "export_hub", "generate_suite",
    "length_name", "load_official", "parse_length", "sort_lengths", "sort_tasks",
    "suite_fingerprint",
]
