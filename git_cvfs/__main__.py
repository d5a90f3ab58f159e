from __future__ import annotations

import sys

from git_cvfs.cli import main

sys.exit(main())
