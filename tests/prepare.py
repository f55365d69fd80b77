"""Run by `make test` before pytest: make sure what the tests need is installed.

Idempotent and quick when everything is already there.  Installs Debian's
chromium and a CJK font (fonts-noto-cjk) for the browser tests when they are missing (CI machines start without
it) and reports the services the tests will use.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from tests.services import ON_CI, port_open

CHROMIUM = "/usr/bin/chromium"
# the portal's CSS names "Noto Sans CJK SC"; without a CJK font a bare machine renders Chinese as boxes
CJK_FONT_PACKAGE = "fonts-noto-cjk"
CJK_FONT_FILE = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"


def _apt_install(packages: list[str], why: str) -> None:
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        print(f"prepare: {' '.join(packages)} missing and cannot be installed here; {why} will "
              + ("fail (CI)" if ON_CI else "skip"), file=sys.stderr)
        return
    print(f"prepare: installing Debian {' '.join(packages)} for {why}", file=sys.stderr)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages], check=False, env=env)


def ensure_browser() -> None:
    missing = [package for package, path in (("chromium", CHROMIUM), (CJK_FONT_PACKAGE, CJK_FONT_FILE))
               if not os.path.exists(path)]
    if missing:
        _apt_install(missing, "the browser tests")


def report_services() -> None:
    pg = port_open("127.0.0.1", 5432)
    print(f"prepare: PostgreSQL at 127.0.0.1:5432 {'up' if pg else 'NOT reachable'}", file=sys.stderr)
    weed = shutil.which("weed") or os.path.join(os.path.dirname(sys.executable), "weed")
    print(f"prepare: SeaweedFS binary {'found' if os.path.exists(weed) else 'MISSING'}", file=sys.stderr)


def main() -> int:
    ensure_browser()
    report_services()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
