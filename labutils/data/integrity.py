"""The data root and cache folder, the data errors, and the checks against manifest.json."""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parent.parent.parent  # labutils/data/ -> the repository
MANIFEST = Path(__file__).resolve().parent.parent / "manifest.json"  # labutils/manifest.json


class DataMissingError(FileNotFoundError):
    """A dataset is not under the data root and could not be downloaded."""


class DataIntegrityError(RuntimeError):
    """A dataset file does not match the checksums in the manifest."""


def data_root() -> Path:
    """The data root: ``$LAB_DATA`` if set, else the repository's ``data/`` folder."""
    return Path(os.environ.get("LAB_DATA") or REPO_ROOT / "data").expanduser().resolve()


def cache_dir() -> Path:
    """A writable, git-ignored folder for decoded tensors and other caches (``$LAB_CACHE``)."""
    path = Path(os.environ.get("LAB_CACHE") or REPO_ROOT / "data" / ".cache").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _missing(dataset: str, root: Path, looked_for: str, how: str, *,
             downloadable: bool = True) -> DataMissingError:
    online = (", or run where the internet is reachable so that it can be downloaded"
              if downloadable else "")
    return DataMissingError(
        f"{dataset} was not found under the data root {root} (looked for {looked_for}). "
        f"{how} Set LAB_DATA to the folder that holds the datasets{online}.")


# ---------------------------------------------------------------------------------------------
# Integrity

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tree_digest(folder: Path) -> dict:
    """File count, byte count and one SHA-256 over every file below ``folder`` (sorted paths)."""
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    digest, total = hashlib.sha256(), 0
    for rel in files:
        data = (folder / rel).read_bytes()
        total += len(data)
        digest.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    return {"files": len(files), "bytes": total, "sha256": digest.hexdigest()}


def _fingerprint(paths: list[Path]) -> str:
    """Cheap stand-in for the content: name, size, mtime, ctime and inode of every file.

    mtime alone can be set back (``touch -d``, ``os.utime``); ctime cannot be set by a user and
    changes with any write, and a file replaced under the same name gets a new inode.
    """
    h = hashlib.sha256()
    for p in sorted(paths):
        st = p.stat()
        h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}|{st.st_dev}|{st.st_ino}\n"
                 .encode())
    return h.hexdigest()


@lru_cache(maxsize=None)
def _manifest() -> dict:
    return json.loads(MANIFEST.read_text())


def verify_dataset(name: str, root: Path | None = None, *, force: bool = False) -> None:
    """Check ``name``'s files under ``root`` against the manifest; raise ``DataIntegrityError``.

    A successful check is remembered in the cache folder (keyed by path, size, mtime, ctime and
    inode of each file), so the hashing happens once per copy of the data, not once per notebook.
    """
    root = Path(root) if root is not None else data_root()
    entry = _manifest().get(name)
    if entry is None:
        raise KeyError(f"no manifest entry for {name!r}; known: {sorted(_manifest())}")
    if "files" in entry:
        paths = [root / rel for rel in entry["files"]]
    else:
        paths = [p for p in (root / name).rglob("*") if p.is_file()]
    stamp_file = cache_dir() / "verified.json"
    try:
        stamps = json.loads(stamp_file.read_text())
    except (FileNotFoundError, ValueError):  # no cache yet, or an unreadable one: hash again
        stamps = {}
    key, fingerprint = f"{name}|{root.resolve()}", _fingerprint(paths)
    if not force and stamps.get(key) == fingerprint:
        return
    if "files" in entry:
        for rel, want in entry["files"].items():
            path = root / rel
            size = path.stat().st_size
            if size != want["size"] or _sha256(path) != want["sha256"]:
                raise DataIntegrityError(
                    f"{path} does not match the manifest (size {size}, expected {want['size']}, "
                    f"or its SHA-256 differs): the copy is damaged or a different version. "
                    f"Delete it and let torchvision download it again, or point LAB_DATA at a "
                    f"good copy.")
    else:
        got, want = tree_digest(root / name), entry["tree"]
        if got != want:
            raise DataIntegrityError(
                f"{root / name} does not match the manifest: found {got['files']} files, "
                f"{got['bytes']} bytes, expected {want['files']} files, {want['bytes']} bytes "
                f"(or the contents differ). Restore the folder from a good copy.")
    stamps[key] = fingerprint
    _atomic_write_text(stamp_file, json.dumps(stamps, indent=1))


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:  # gone after a successful rename; after an error or interrupt, clean up
        tmp.unlink(missing_ok=True)
