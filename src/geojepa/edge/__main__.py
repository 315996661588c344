"""``python -m geojepa.edge``: the same as the ``geojepa-edge`` command."""

from __future__ import annotations

from geojepa.edge import main

if __name__ == "__main__":
    main()
