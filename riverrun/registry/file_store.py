"""``FileStore``: the registry in a local directory, one 0700 subdirectory per model.

Layout::

    DIR/<model>/v000001.ckpt   signed checkpoint (0600)
    DIR/<model>/v000001.json   metadata
    DIR/<model>/audit.jsonl    one JSON record per line, appended under the lock
    DIR/<model>/pointers.json  {"champion": 3, ...}
    DIR/<model>/counter        the last version handed out
    DIR/<model>/.lock          flock(2) target serialising writers (threads and processes)

Every file is written to a temporary file in the same directory, fsynced, then moved into place
(``os.link`` for write-once versions, ``os.replace`` for pointers and the counter) and the
directory is fsynced: a crash leaves the old file or the new one, never half of one.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     store = FileStore(tmp)
...     v = store.next_version("demo")
...     store.put_blob("demo", v, b"blob")
...     store.put_meta("demo", v, {"version": v})
...     store.set_pointer("demo", "champion", v)
...     (store.list_versions("demo"), store.get_blob("demo", v), store.get_pointer("demo", "champion"))
([1], b'blob', 1)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from riverrun.errors import CheckpointError, RegistryUnavailable, UnknownVersion
from riverrun.registry.names import check_name, check_version
from riverrun.registry.signing import canonical_json

_VERSION_FILE = re.compile(r"v(\d+)\.json")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileStore:
    """A ``Store`` in ``directory`` (created if missing; model directories are mode 0700)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"FileStore({str(self.directory)!r})"

    # -- paths, locking, atomic writes -------------------------------------------------------

    def _dir(self, model: str, create: bool = False) -> Path:
        path = self.directory / check_name(model, "model")
        if create and not path.is_dir():
            with self._io(f"create {path}"):
                self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                path.mkdir(mode=0o700, exist_ok=True)
                path.chmod(0o700)  # mkdir's mode is masked by the umask
        return path

    def _file(self, model: str, version: int, suffix: str) -> Path:
        return self._dir(model) / f"v{check_version(version):06d}.{suffix}"

    @contextlib.contextmanager
    def _io(self, what: str) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise RegistryUnavailable(f"model registry at {self.directory}: cannot {what}: {exc}") from exc

    @contextlib.contextmanager
    def _locked(self, model: str) -> Iterator[Path]:
        path = self._dir(model, create=True)
        with self._io(f"lock {path}"), open(path / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield path
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _write(self, target: Path, data: bytes, *, exclusive: bool) -> None:
        """Write ``data`` to ``target`` atomically; ``exclusive``: keep an existing target."""
        with self._io(f"write {target}"):
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                if not exclusive:
                    os.replace(tmp, target)
                else:
                    try:
                        os.link(tmp, target)
                    except FileExistsError:
                        if target.read_bytes() != data:
                            raise CheckpointError(
                                f"{target.name} of model {target.parent.name!r} already exists with "
                                "other content; versions are immutable"
                            ) from None
                _fsync_dir(target.parent)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)

    def _read(self, path: Path, model: str, version: int) -> bytes:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise UnknownVersion(f"model {model!r} has no version {version} in {self.directory}") from None
        except OSError as exc:
            raise RegistryUnavailable(
                f"model registry at {self.directory}: cannot read {path}: {exc}"
            ) from exc

    # -- Store -------------------------------------------------------------------------------

    def put_blob(self, model: str, version: int, blob: bytes) -> None:
        """Write the checkpoint of ``version`` once."""
        self._dir(model, create=True)
        self._write(self._file(model, version, "ckpt"), bytes(blob), exclusive=True)

    def get_blob(self, model: str, version: int) -> bytes:
        """The checkpoint bytes; ``UnknownVersion`` if absent."""
        return self._read(self._file(model, version, "ckpt"), model, version)

    def put_meta(self, model: str, version: int, meta: dict[str, Any]) -> None:
        """Write the metadata of ``version`` once; it is listed from now on."""
        self._dir(model, create=True)
        self._write(self._file(model, version, "json"), canonical_json(meta), exclusive=True)

    def get_meta(self, model: str, version: int) -> dict[str, Any]:
        """The metadata; ``UnknownVersion`` if absent."""
        return json.loads(self._read(self._file(model, version, "json"), model, version))

    def list_versions(self, model: str) -> list[int]:
        """Versions with metadata, ascending."""
        path = self._dir(model)
        with self._io(f"list {path}"):
            names = os.listdir(path) if path.is_dir() else []
        return sorted(int(m.group(1)) for m in map(_VERSION_FILE.fullmatch, names) if m)

    def next_version(self, model: str) -> int:
        """Counter + 1 under the model's lock (never below a version already on disk)."""
        with self._locked(model) as path:
            counter = path / "counter"
            with self._io(f"read {counter}"):
                last = int(counter.read_text()) if counter.exists() else 0
            files = (re.fullmatch(r"v(\d+)\.(?:json|ckpt)", n) for n in os.listdir(path))
            last = max([last, *(int(m.group(1)) for m in files if m)])
            self._write(counter, str(last + 1).encode(), exclusive=False)
            return last + 1

    def append_audit(self, model: str, record: dict[str, Any]) -> None:
        """Append one JSON line to ``audit.jsonl`` and fsync it."""
        line = canonical_json(record) + b"\n"
        with self._locked(model) as path, self._io(f"append to {path / 'audit.jsonl'}"):
            fd = os.open(path / "audit.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)

    def read_audit(self, model: str) -> list[dict[str, Any]]:
        """The audit records, oldest first; a torn last line (crash while appending) is skipped."""
        path = self._dir(model) / "audit.jsonl"
        with self._io(f"read {path}"):
            data = path.read_bytes() if path.exists() else b""
        lines = data.split(b"\n")
        return [json.loads(line) for line in lines[:-1] if line]  # lines[-1]: "" or a torn line

    def set_pointer(self, model: str, name: str, version: int) -> None:
        """Point ``name`` at ``version`` in ``pointers.json``."""
        check_name(name, "pointer")
        check_version(version)
        with self._locked(model) as path:
            pointers = self._pointers(path)
            pointers[name] = version
            self._write(path / "pointers.json", canonical_json(pointers), exclusive=False)

    def get_pointer(self, model: str, name: str) -> int | None:
        """The version ``name`` points at, or ``None``."""
        return self._pointers(self._dir(model)).get(check_name(name, "pointer"))

    def _pointers(self, path: Path) -> dict[str, int]:
        file = path / "pointers.json"
        with self._io(f"read {file}"):
            return json.loads(file.read_bytes()) if file.exists() else {}
