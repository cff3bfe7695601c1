"""``python -m plait.plugins._probe``: load every plugin in a fresh process and print the records.

``plait plugins install`` runs it after pip so the new plugin is imported and registered by a
clean interpreter, exactly as the next ``plait`` command or server start would, and a plugin whose
import crashes the process cannot take the installer down with it.
"""

from __future__ import annotations

import json
import sys

from plait.plugins._host import PluginHost


def main() -> int:
    host = PluginHost.discover()
    records = [
        {
            "name": r.name,
            "distribution": r.distribution,
            "version": r.version,
            "status": r.status,
            "errors": r.errors,
            "types": r.types,
        }
        for r in host.records
    ]
    sys.stdout.write(json.dumps(records) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
