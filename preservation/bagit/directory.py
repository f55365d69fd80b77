"""Deliveries that are local directories: a plain tree, or an existing bag.

The tree is walked depth-first with ``os.scandir`` on byte paths (so names
that are not UTF-8 are seen as they are), one directory listing at a time,
sorted by name: memory grows with the widest directory and the depth, never
with the file count.  Symbolic links are reported, never followed.
"""

from __future__ import annotations

import errno
import os
import stat
from functools import partial
from operator import attrgetter
from typing import Callable, Iterator, NamedTuple

from preservation.findings import FindingList

from . import codes
from .delivery_base import Delivery, DeliveryEntry, DeliveryLimits, DeliveryTotals
from .names import shown
from .tagfiles import FETCH_TXT

_PROBE_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0)


class _Node(NamedTuple):
    path: str
    """'/'-separated relative path; bytes that are not UTF-8 are surrogate-escaped."""
    name: str
    entry: os.DirEntry
    depth: int


ListingHook = Callable[[str, list[str]], None]
ErrorHook = Callable[[str, OSError], None]


def walk_tree(
    root: bytes, max_depth: int, on_listing: ListingHook | None = None, on_error: ErrorHook | None = None
) -> Iterator[_Node]:
    """Every entry under ``root``, depth-first in name order; directories at ``max_depth`` are not entered."""
    stack: list[tuple[str, Iterator[tuple[str, os.DirEntry]], int]] = []

    def enter(path_b: bytes, rel: str, depth: int) -> None:
        try:
            with os.scandir(path_b) as it:
                listing = sorted(it, key=attrgetter("name"))
        except OSError as e:
            if on_error is not None:
                on_error(rel, e)
            return
        named = [(os.fsdecode(e.name), e) for e in listing]
        if on_listing is not None:
            on_listing(rel, [name for name, _ in named])
        stack.append((rel, iter(named), depth))

    enter(root, "", 0)
    while stack:
        parent, it, depth = stack[-1]
        item = next(it, None)
        if item is None:
            stack.pop()
            continue
        name, entry = item
        path = f"{parent}/{name}" if parent else name
        yield _Node(path, name, entry, depth + 1)
        if depth + 1 < max_depth and entry.is_dir(follow_symlinks=False):
            enter(entry.path, path, depth + 1)


class DirectoryDelivery(Delivery):
    """A local directory tree; every regular file under it is payload."""

    kind = "directory"

    def __init__(self, path: str, *, strict: bool = True, limits: DeliveryLimits | None = None) -> None:
        super().__init__(path, strict=strict, limits=limits)
        self.root = os.path.abspath(path)
        self._root_b = os.fsencode(self.root)

    def entries(self) -> Iterator[DeliveryEntry]:
        for node in walk_tree(self._root_b, self.limits.max_depth):
            entry = node.entry
            if entry.is_file(follow_symlinks=False):
                yield DeliveryEntry(
                    node.path, entry.stat(follow_symlinks=False).st_size, partial(open, entry.path, "rb"), entry.path
                )

    def _inspect(self, findings: FindingList, totals: DeliveryTotals) -> None:
        real_root = os.path.realpath(self.root)
        if not os.path.isdir(real_root):
            self.note(findings, codes.UNREADABLE, "the delivery directory cannot be read", self.source)
            return

        def on_listing(parent: str, names: list[str]) -> None:
            if not names and parent:
                self.note(findings, codes.EMPTY_DIRECTORY, "an empty directory cannot be carried in a bag", shown(parent))
            self.check_siblings(findings, parent, names)

        def on_error(parent: str, error: OSError) -> None:
            self.note(
                findings,
                codes.UNREADABLE,
                f"the directory cannot be listed: {error.strerror or error}",
                shown(parent) or self.source,
            )

        max_depth = self.limits.max_depth
        for node in walk_tree(self._root_b, max_depth, on_listing, on_error):
            self.check_name(findings, node.path, node.name)
            entry = node.entry
            if entry.is_symlink():
                self._check_symlink(findings, node, real_root)
            elif entry.is_dir(follow_symlinks=False):
                if node.depth >= max_depth:
                    self.note(
                        findings,
                        codes.TOO_DEEP,
                        f"the tree goes deeper than {max_depth} levels; nothing below is inspected",
                        shown(node.path),
                        limit=max_depth,
                    )
            elif entry.is_file(follow_symlinks=False):
                self._check_file(findings, totals, node)
            else:
                self._check_special(findings, node)

    def _check_file(self, findings: FindingList, totals: DeliveryTotals, node: _Node) -> None:
        self.check_path_length(findings, node.path)
        try:
            st = node.entry.stat(follow_symlinks=False)
        except OSError as e:
            self.note(findings, codes.UNREADABLE, f"cannot stat: {e.strerror or e}", shown(node.path))
            return
        if st.st_nlink > 1:
            self.note(
                findings,
                codes.HARD_LINK,
                f"a hard link ({st.st_nlink} names for the same file)",
                shown(node.path),
                links=st.st_nlink,
            )
        try:
            os.close(os.open(node.entry.path, _PROBE_FLAGS))
        except OSError as e:
            reason = "permission denied" if e.errno in (errno.EACCES, errno.EPERM) else (e.strerror or str(e))
            self.note(findings, codes.UNREADABLE, f"the file cannot be read: {reason}", shown(node.path))
            return
        totals.files += 1
        totals.bytes += st.st_size

    def _check_symlink(self, findings: FindingList, node: _Node, real_root: str) -> None:
        try:
            target = os.readlink(node.entry.path)
        except OSError as e:
            target = b""
            self.note(findings, codes.UNREADABLE, f"the link cannot be read: {e.strerror or e}", shown(node.path))
        resolved = os.fsdecode(os.path.realpath(os.path.join(os.path.dirname(node.entry.path), target)))
        shown_target = shown(os.fsdecode(target))
        if resolved == real_root or resolved.startswith(real_root.rstrip(os.sep) + os.sep):
            self.note(
                findings,
                codes.SYMLINK_INSIDE,
                f"a symbolic link (to {shown_target!r}); links are never followed",
                shown(node.path),
                target=shown_target,
            )
        else:
            self.note(
                findings,
                codes.SYMLINK_OUTSIDE,
                f"a symbolic link pointing outside the delivery (to {shown_target!r})",
                shown(node.path),
                target=shown_target,
            )

    def _check_special(self, findings: FindingList, node: _Node) -> None:
        try:
            mode = node.entry.stat(follow_symlinks=False).st_mode
        except OSError:
            mode = 0
        what = (
            "a FIFO"
            if stat.S_ISFIFO(mode)
            else "a socket"
            if stat.S_ISSOCK(mode)
            else "a character device"
            if stat.S_ISCHR(mode)
            else "a block device"
            if stat.S_ISBLK(mode)
            else "not a regular file"
        )
        self.note(findings, codes.SPECIAL_FILE, f"{what}: only regular files can be preserved", shown(node.path))


class BagDelivery(DirectoryDelivery):
    """An existing bag (a directory with bagit.txt at its root): copied as it is, never rebagged.

    Its entries are every file of the bag, tag files included, relative to
    the bag root.
    """

    kind = "bag"

    def _inspect(self, findings: FindingList, totals: DeliveryTotals) -> None:
        super()._inspect(findings, totals)
        if os.path.lexists(os.path.join(self.root, FETCH_TXT)):
            self.note(
                findings,
                codes.BAG_HAS_FETCH,
                "the bag has a fetch.txt: some of its payload lives elsewhere, so it is not complete",
                FETCH_TXT,
            )
