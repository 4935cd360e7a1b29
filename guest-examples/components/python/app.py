"""A WASI 0.2 command in Python: componentize-py makes it a component that
exports `wasi:cli/run` and imports `demo:greeter/api@0.1.0` (from greeter.wat)."""

import sys

from wit_world import exports
from wit_world.imports import api


class Run(exports.Run):
    def run(self) -> None:
        print("hello from Python, as a WASI 0.2 component")
        print(f"Python {sys.version.split()[0]} on {sys.platform}")
        print(f"args: {sys.argv}")
        print(f"greeter.wat says: {api.greeting()}")
