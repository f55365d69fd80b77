"""Deliveries that are local directories: a plain tree, or an existing bag.

The tree is walked depth-first on directory descriptors: each directory is
opened relative to its parent's descriptor with ``O_NOFOLLOW``, listed with
``os.scandir`` on that descriptor (byte names, so names that are not UTF-8
are seen as they are) and sorted by name.  No path is ever resolved from the
root again, so a directory swapped for a symbolic link after it was listed
is refused, never followed.  Memory grows with the widest directory and the
depth, plus a fixed-size identity record per file and directory.

The check records the identity (device, inode, size, path) of every
directory and regular file it walked; bagging walks the same descriptors
again and refuses, with :data:`~preservation.codes.ENTRY_REPLACED`, any entry whose
identity or type is not what the check saw.  Files are opened relative to
their directory's descriptor and compared with ``fstat`` before a byte is
read.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from array import array
from functools import partial
from operator import attrgetter
from typing import BinaryIO, Callable, Iterator, NamedTuple

from preservation import codes
from preservation.errors import DeliveryRejected
from preservation.findings import FindingList

from .delivery_base import Delivery, DeliveryEntry, DeliveryLimits, DeliveryTotals, EntryReplaced
from .names import shown
from .tagfiles import FETCH_TXT

OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0)
"""How a delivery file is opened: never through a link, and never blocking on a FIFO swapped in for it."""
DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_ROOT_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_DIRECTORY_SIZE = (1 << 64) - 1
"""Stands for the size in a directory's identity record (no file is that big)."""
_MASK = (1 << 64) - 1


class _Node(NamedTuple):
    path: str
    """'/'-separated relative path; bytes that are not UTF-8 are surrogate-escaped."""
    name: str
    entry: os.DirEntry
    depth: int
    parent_fd: int
    """The descriptor of the directory holding the entry, open while the node is looked at."""


ListingHook = Callable[[str, list[str]], None]
ErrorHook = Callable[[str, OSError], None]
DirectoryHook = Callable[[str, int, os.stat_result], None]


def walk_tree(
    root_fd: int,
    max_depth: int,
    on_listing: ListingHook | None = None,
    on_error: ErrorHook | None = None,
    on_directory: DirectoryHook | None = None,
    release: Callable[[int], None] = os.close,
) -> Iterator[_Node]:
    """Every entry under the directory ``root_fd``, depth-first in name order.

    Directories at ``max_depth`` are not entered.  Each directory is opened
    relative to its parent's descriptor without following links; one that
    is no longer the directory just listed is reported to ``on_error`` and
    not entered.  ``on_directory(path, fd, stat)`` sees each directory as
    it is entered (the root as ""), and ``release(fd)`` is called for each
    directory descriptor, the root's included, once its listing is walked.
    """
    stack: list[tuple[str, Iterator[tuple[str, os.DirEntry]], int, int]] = []

    def enter(fd: int, rel: str, depth: int) -> None:
        try:
            with os.scandir(fd) as it:
                listing = sorted(it, key=attrgetter("name"))
        except OSError as e:
            release(fd)
            if on_error is not None:
                on_error(rel, e)
            return
        named = [(os.fsdecode(e.name), e) for e in listing]
        if on_listing is not None:
            on_listing(rel, [name for name, _ in named])
        stack.append((rel, iter(named), depth, fd))

    def open_child(parent_fd: int, entry: os.DirEntry, path: str) -> int | None:
        try:
            fd = os.open(entry.name, DIRECTORY_FLAGS, dir_fd=parent_fd)
        except OSError as e:
            if on_error is not None:
                on_error(path, e)
            return None
        try:
            st = os.fstat(fd)
            listed = entry.stat(follow_symlinks=False)
        except OSError as e:
            os.close(fd)
            if on_error is not None:
                on_error(path, e)
            return None
        if (st.st_dev, st.st_ino) != (listed.st_dev, listed.st_ino):
            os.close(fd)
            if on_error is not None:
                on_error(path, EntryReplaced(errno.ESTALE, "replaced by another directory while it was walked"))
            return None
        if on_directory is not None:
            try:
                on_directory(path, fd, st)
            except BaseException:
                release(fd)
                raise
        return fd

    if on_directory is not None:
        try:
            on_directory("", root_fd, os.fstat(root_fd))
        except BaseException:
            release(root_fd)
            raise
    enter(root_fd, "", 0)
    try:
        while stack:
            parent, it, depth, parent_fd = stack[-1]
            item = next(it, None)
            if item is None:
                stack.pop()
                release(parent_fd)
                continue
            name, entry = item
            path = f"{parent}/{name}" if parent else name
            yield _Node(path, name, entry, depth + 1, parent_fd)
            if depth + 1 < max_depth and entry.is_dir(follow_symlinks=False):
                fd = open_child(parent_fd, entry, path)
                if fd is not None:
                    enter(fd, path, depth + 1)
    finally:
        while stack:
            release(stack.pop()[3])


def walk_path(root: bytes, max_depth: int, on_listing: ListingHook | None = None,
              on_error: ErrorHook | None = None) -> Iterator[_Node]:
    """:func:`walk_tree` from the directory at ``root`` (which may itself be reached through a link)."""
    try:
        root_fd = os.open(root, _ROOT_FLAGS)
    except OSError as e:
        if on_error is not None:
            on_error("", e)
        return iter(())
    return walk_tree(root_fd, max_depth, on_listing, on_error)


class _Identities:
    """What the check saw of each directory and regular file, in walk order: four 64-bit words each."""

    __slots__ = ("_words",)

    def __init__(self) -> None:
        self._words = array("Q")

    def __len__(self) -> int:
        return len(self._words) // 4

    @staticmethod
    def record(st: os.stat_result, path: str, directory: bool) -> tuple[int, int, int, int]:
        size = _DIRECTORY_SIZE if directory else st.st_size
        return st.st_dev & _MASK, st.st_ino & _MASK, size, hash(path) & _MASK

    def add(self, record: tuple[int, int, int, int]) -> None:
        self._words.extend(record)

    def at(self, index: int) -> tuple[int, ...] | None:
        if index >= len(self):
            return None
        return tuple(self._words[4 * index : 4 * index + 4])


class _HeldDirectories:
    """Directory descriptors kept open until the last file listed in each has been opened.

    The walk holds a directory while it lists it, and each file waiting to
    be read holds its directory; files are opened on worker threads, so the
    counts are kept under a lock.  :meth:`close_all` closes what a failed
    bagging left.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: dict[int, int] = {}

    def adopt(self, fd: int) -> None:
        """Hold ``fd`` for the walk (once: adopting it again changes nothing)."""
        with self._lock:
            self._users.setdefault(fd, 1)

    def share(self, fd: int) -> None:
        with self._lock:
            self._users[fd] += 1

    def release(self, fd: int) -> None:
        with self._lock:
            left = self._users.get(fd, 0) - 1
            if left > 0:
                self._users[fd] = left
                return
            if self._users.pop(fd, None) is None:
                return
        os.close(fd)

    def close_all(self) -> None:
        with self._lock:
            fds, self._users = list(self._users), {}
        for fd in fds:
            os.close(fd)


class DirectoryDelivery(Delivery):
    """A local directory tree; every regular file under it is payload."""

    kind = "directory"

    def __init__(self, path: str, *, strict: bool = True, limits: DeliveryLimits | None = None) -> None:
        super().__init__(path, strict=strict, limits=limits)
        self.root = os.path.abspath(path)
        self._root_b = os.fsencode(self.root)
        self._seen: _Identities | None = None
        self._held: list[_HeldDirectories] = []

    def close(self) -> None:
        for held in self._held:
            held.close_all()
        self._held.clear()

    # --- bagging --------------------------------------------------------------------

    def entries(self) -> Iterator[DeliveryEntry]:
        """The regular files the check saw, each opened only if it is still the file the check saw.

        Raises DeliveryRejected (code DLV028) as soon as an entry was
        replaced, added or removed since the check; the entry's opener
        raises :class:`EntryReplaced` when the file itself was swapped
        after this walk listed it.
        """
        if self._seen is None:
            self.check()
        seen = self._seen
        assert seen is not None
        held = _HeldDirectories()
        self._held.append(held)
        position = 0

        def expect(path: str, st: os.stat_result, directory: bool) -> None:
            nonlocal position
            then, now = seen.at(position), _Identities.record(st, path, directory)
            if then is None or (then[0], then[1], then[3]) != (now[0], now[1], now[3]):
                raise self._replaced(path or ".", "is not the file or directory the check saw")
            if then[2] != now[2]:
                raise self.rejected(
                    codes.CHANGED_WHILE_BAGGING,
                    f"the file was {then[2]} bytes when checked and is {now[2]} now: is the delivery still being written?",
                    shown(path),
                )
            position += 1

        def on_directory(path: str, fd: int, st: os.stat_result) -> None:
            held.adopt(fd)
            expect(path, st, True)

        def on_error(path: str, error: OSError) -> None:
            raise self._replaced(path or ".", f"cannot be walked again: {error.strerror or error}")

        try:
            root_fd = os.open(self._root_b, _ROOT_FLAGS)
        except OSError as e:
            raise self._replaced(".", f"cannot be opened again: {e.strerror or e}") from e
        held.adopt(root_fd)
        for node in walk_tree(root_fd, self.limits.max_depth, None, on_error, on_directory, held.release):
            entry = node.entry
            if entry.is_dir(follow_symlinks=False):
                continue
            if not entry.is_file(follow_symlinks=False):
                raise self._replaced(node.path, "is no longer a regular file")
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as e:
                raise self._replaced(node.path, f"cannot be found again: {e.strerror or e}") from e
            expect(node.path, st, False)
            held.share(node.parent_fd)
            open_fd = partial(_open_once, held, node.parent_fd, entry.name, (st.st_dev, st.st_ino))
            yield DeliveryEntry(node.path, st.st_size, partial(_file_object, open_fd), open_fd)
        if position != len(seen):
            raise self._replaced(None, f"{len(seen) - position} file(s) or directories vanished since the check")

    def _replaced(self, path: str | None, message: str) -> DeliveryRejected:
        return self.rejected(codes.ENTRY_REPLACED, f"{message}: was the delivery changed while it was bagged?",
                             shown(path) if path else None)

    # --- the check ----------------------------------------------------------------------

    def _inspect(self, findings: FindingList, totals: DeliveryTotals) -> None:
        real_root = os.path.realpath(self.root)
        self._seen = seen = _Identities()
        try:
            root_fd = os.open(self._root_b, _ROOT_FLAGS)
        except OSError:
            self.note(findings, codes.UNREADABLE, "the delivery directory cannot be read", self.source)
            return

        def on_listing(parent: str, names: list[str]) -> None:
            if not names and parent:
                self.note(findings, codes.EMPTY_DIRECTORY, "an empty directory cannot be carried in a bag", shown(parent))
            self.check_siblings(findings, parent, names)

        def on_error(parent: str, error: OSError) -> None:
            self.note(
                findings,
                codes.ENTRY_REPLACED if isinstance(error, EntryReplaced) else codes.UNREADABLE,
                f"the directory cannot be listed: {error.strerror or error}",
                shown(parent) or self.source,
            )

        def on_directory(path: str, fd: int, st: os.stat_result) -> None:
            seen.add(_Identities.record(st, path, True))

        max_depth = self.limits.max_depth
        for node in walk_tree(root_fd, max_depth, on_listing, on_error, on_directory):
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
            fd = os.open(node.entry.name, OPEN_FLAGS, dir_fd=node.parent_fd)
        except OSError as e:
            reason = "permission denied" if e.errno in (errno.EACCES, errno.EPERM) else (e.strerror or str(e))
            self.note(findings, codes.UNREADABLE, f"the file cannot be read: {reason}", shown(node.path))
            return
        try:
            st = os.fstat(fd)
        finally:
            os.close(fd)
        if not stat.S_ISREG(st.st_mode):
            self.note(findings, codes.ENTRY_REPLACED, "listed as a regular file, opened as something else",
                      shown(node.path))
            return
        if st.st_nlink > 1:
            self.note(
                findings,
                codes.HARD_LINK,
                f"a hard link ({st.st_nlink} names for the same file)",
                shown(node.path),
                links=st.st_nlink,
            )
        assert self._seen is not None
        self._seen.add(_Identities.record(st, node.path, False))
        totals.files += 1
        totals.bytes += st.st_size

    def _check_symlink(self, findings: FindingList, node: _Node, real_root: str) -> None:
        try:
            target = os.fsencode(os.readlink(node.entry.name, dir_fd=node.parent_fd))
        except OSError as e:
            target = b""
            self.note(findings, codes.UNREADABLE, f"the link cannot be read: {e.strerror or e}", shown(node.path))
        where = os.path.dirname(os.path.join(self._root_b, os.fsencode(node.path)))
        resolved = os.fsdecode(os.path.realpath(os.path.join(where, target)))
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


def _open_once(held: _HeldDirectories, dir_fd: int, name: str, identity: tuple[int, int]) -> int:
    """Open ``name`` in the held directory ``dir_fd`` (releasing it) if it is still the file with ``identity``.

    Raises EntryReplaced when it is not, OSError when it cannot be opened.
    """
    try:
        fd = os.open(name, OPEN_FLAGS, dir_fd=dir_fd)
    finally:
        held.release(dir_fd)
    try:
        st = os.fstat(fd)
        # O_NONBLOCK stays set: it kept a swapped-in FIFO from blocking the open, and means nothing to a regular file
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != identity:
            raise EntryReplaced(errno.ESTALE, "replaced by another file after the check")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _file_object(open_fd: Callable[[], int]) -> BinaryIO:
    return open(open_fd(), "rb")


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
