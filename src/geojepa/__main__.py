"""``python -m geojepa`` (and ``torchrun ... -m geojepa pretrain ...``) runs the command line."""

from __future__ import annotations

from geojepa.cli import main

if __name__ == "__main__":
    main()
