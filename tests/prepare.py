"""Run by `make test` before pytest: make sure what the tests need is installed.

Idempotent and quick when everything is already there.  Installs Debian's
chromium for the browser tests when it is missing (CI machines start without
it) and reports the services the tests will use.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from tests.services import ON_CI, port_open

CHROMIUM = "/usr/bin/chromium"


def ensure_chromium() -> None:
    if os.path.exists(CHROMIUM):
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        print("prepare: chromium missing and cannot be installed here; browser tests will "
              + ("fail (CI)" if ON_CI else "skip"), file=sys.stderr)
        return
    print("prepare: installing Debian chromium for the browser tests", file=sys.stderr)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"], check=False, env=env)


def report_services() -> None:
    pg = port_open("127.0.0.1", 5432)
    print(f"prepare: PostgreSQL at 127.0.0.1:5432 {'up' if pg else 'NOT reachable'}", file=sys.stderr)
    weed = shutil.which("weed") or os.path.join(os.path.dirname(sys.executable), "weed")
    print(f"prepare: SeaweedFS binary {'found' if os.path.exists(weed) else 'MISSING'}", file=sys.stderr)


def main() -> int:
    ensure_chromium()
    report_services()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
