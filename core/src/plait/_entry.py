"""The ``plait`` console script's entry point, kept tiny so it runs before the heavy imports.

Start-up builds hundreds of thousands of long-lived objects (modules, classes, pydantic
validators, SQLAlchemy's constructs, the plugins' types); the cyclic garbage collector would scan
them again and again while they are being made: about 0.05 s of a `plait run` (measured: import
+ plugin load 0.35 s with the collector on, 0.30 s off). So collection is off until start-up is
done: `plait.cli.main` calls `plait.runtime.settle_heap()` once the imports are made, which
freezes them (they live as long as the process) and turns collection back on for the command
itself (freezing there and collecting during plugin loading costs the same: 0.321 s vs 0.317 s).
"""

from __future__ import annotations

import gc


def main() -> None:
    gc.disable()
    from plait.cli import main as run_cli

    run_cli()
