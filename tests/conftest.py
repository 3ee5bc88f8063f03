"""Suite-wide defaults. The suites written before access control (issue 14) exercise the fleet itself,
so their processes run with `SCF_AUTH=off`; the access-control tests turn it on explicitly, with their
own policy, users and keys (tests/integration/test_access_*.py, tests/unit/test_access_*.py)."""

from __future__ import annotations

import os

os.environ["SCF_AUTH"] = "off"
