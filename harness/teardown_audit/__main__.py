"""`python -m teardown_audit` is the `teardown-audit` command."""

from __future__ import annotations

import sys

from teardown_audit.cli import main

if __name__ == "__main__":
    sys.exit(main())
