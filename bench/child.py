"""Child-process entry point: ``python -m bench.child module:function ARGS.json RESULT.json``."""

from __future__ import annotations

import importlib
import json
import resource
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    target, args_path, result_path = argv
    module_name, _, function_name = target.partition(":")
    function = getattr(importlib.import_module(module_name), function_name)
    kwargs = json.loads(Path(args_path).read_text(encoding="utf-8"))
    result = function(**kwargs)
    result["peak_rss_self"] = own_peak_rss()
    result["peak_rss_children"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    Path(result_path).write_text(json.dumps(result), encoding="utf-8")
    return 0


def own_peak_rss(pid: int | str = "self") -> int:
    """The peak resident set (VmHWM) in bytes of this process, or of process ``pid`` (0 if it is gone).

    Not ``ru_maxrss``: on Linux a spawned child's ru_maxrss starts at its
    parent's resident set (the parent's memory map is still the child's
    until exec), so it would report the benchmark runner's size, not ours.
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0 if pid != "self" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 if pid == "self" else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
