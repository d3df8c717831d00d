"""Housekeeping of a training directory: the writer's lock and the one-line errors.

Only one trainer may write a `train_dir` at a time. `TrainDirLock` holds an
exclusive `fcntl.flock` on `train_dir/.lock` for the life of the run; the file
names the holder (pid, host, start time) so a second run can say who it is.
The kernel drops the flock when its process dies, so the lock of a crashed
run is stale at once; where the file system has no flock, the pid is checked
instead (same host only). Readers (slim-eval, `--eval_loop`) take no lock.

`dir_error` turns the operating system's refusals (read-only, permission
denied, not a directory, no space left) into the one-line `SlimError` that
names the path and what to do.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import time
from typing import Any

import tensorflow as tf

from slimcli.errors import SlimError

__all__ = ["LOCK_NAME", "TrainDirLock", "TrainDirLocked", "dir_error", "prepare_train_dir"]

log = logging.getLogger("slimcli.train")

LOCK_NAME = ".lock"
_HELD: dict[str, list] = {}  # real path -> [open file, depth]: re-entrant within a process


class TrainDirLocked(SlimError):
    """Another live run holds the training directory's lock."""


def _is_local(path: str) -> bool:
    return "://" not in path


def dir_error(path: str, error: BaseException, doing: str = "write to",
              flag: str = "--train_dir") -> SlimError:
    """The one-line error for an OS or TensorFlow file error on `path` (`doing` it).

    `flag` is the flag the user passed the directory with (slim-download: `--dataset_dir`).
    """
    code = getattr(error, "errno", None)
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    if code == errno.ENOSPC or isinstance(error, tf.errors.ResourceExhaustedError):
        return SlimError(f"no space left on the device of {path} ({text}): free some space or "
                         f"choose another {flag}; nothing was half-written.")
    if code in (errno.EACCES, errno.EPERM, errno.EROFS) or \
            isinstance(error, (PermissionError, tf.errors.PermissionDeniedError)):
        return SlimError(f"cannot {doing} {path}: permission denied or read-only file system "
                         f"({text}); choose a writable {flag} or fix its permissions.")
    if code in (errno.ENOTDIR, errno.EEXIST) or isinstance(error, NotADirectoryError):
        return SlimError(f"cannot {doing} {path}: a path component is a file, not a directory "
                         f"({text}); pass a directory for {flag}.")
    return SlimError(f"cannot {doing} {path} ({text}); check the path and its file system.")


def prepare_train_dir(path: str) -> None:
    """Creates `path` as a directory, or raises the one-line error saying why it cannot."""
    if tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path):
        raise SlimError(f"--train_dir={path} is a file, not a directory: pass a directory "
                        f"(it is created if missing) or move the file away.")
    try:
        if _is_local(path):
            os.makedirs(path, exist_ok=True)
        else:
            tf.io.gfile.makedirs(path)
    except (OSError, tf.errors.OpError) as e:
        raise dir_error(path, e, "create") from None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _describe(holder: dict) -> str:
    started = holder.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if started else "?"
    return f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, started {when}"


class TrainDirLock:
    """`with TrainDirLock(train_dir):` holds the directory's writer lock.

    Re-entrant within one process (slim-train takes it, then the loop of
    `slim.learning.train` takes it again). Remote paths (`gs://`) are not
    locked: flock needs a local or NFS file system.

    Raises:
      TrainDirLocked: another live run holds it (names pid, host and start).
      SlimError: the directory cannot be written (see `dir_error`).
    """

    def __init__(self, train_dir: str):
        self.train_dir = train_dir
        self.path = os.path.join(train_dir, LOCK_NAME)
        self._key = os.path.realpath(self.path) if _is_local(train_dir) else None

    def __enter__(self) -> "TrainDirLock":
        if self._key is None:
            log.info("%s is not a local path: running without a lock on it", self.train_dir)
            return self
        if self._key in _HELD:
            _HELD[self._key][1] += 1
            return self
        prepare_train_dir(self.train_dir)
        handle = self._open_locked()
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                     "started": time.time()}) + "\n")
            handle.flush()
        except BaseException:
            handle.close()
            raise
        _HELD[self._key] = [handle, 1]
        return self

    def _open_locked(self) -> Any:
        """The lock file, opened and locked; retried when a finishing run unlinked it meanwhile."""
        for _ in range(10):
            try:
                handle = open(self.path, "a+")
            except OSError as e:
                raise dir_error(self.train_dir, e) from None
            try:
                self._acquire(handle)
                same = os.path.exists(self.path) and \
                    os.stat(self.path).st_ino == os.fstat(handle.fileno()).st_ino
            except BaseException:
                handle.close()
                raise
            if same:
                return handle
            handle.close()
        raise SlimError(f"could not lock {self.path}: it keeps being replaced; is another "
                        f"program deleting it?")

    def _acquire(self, handle: Any) -> None:
        import fcntl
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            raise self._locked(self._holder(handle)) from None
        except OSError as e:
            if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                raise dir_error(self.train_dir, e) from None
        holder = self._holder(handle)  # no flock here: trust a live pid on this host
        if holder and holder.get("pid") != os.getpid() and (
                holder.get("host") != socket.gethostname() or _pid_alive(int(holder["pid"]))):
            raise self._locked(holder)

    def _holder(self, handle: Any) -> dict:
        handle.seek(0)
        try:
            return json.loads(handle.read() or "{}")
        except ValueError:
            return {}

    def _locked(self, holder: dict) -> TrainDirLocked:
        return TrainDirLocked(
            f"--train_dir={self.train_dir} is in use by another slim-train "
            f"({_describe(holder)}); wait for it to finish, stop it, or choose another "
            f"--train_dir (if that run is gone, delete {self.path}).")

    def __exit__(self, *exc: Any) -> None:
        if self._key is None or self._key not in _HELD:
            return
        held = _HELD[self._key]
        held[1] -= 1
        if held[1] > 0:
            return
        del _HELD[self._key]
        try:
            os.remove(self.path)
        except OSError:
            pass
        held[0].close()
