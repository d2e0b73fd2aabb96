"""Downloading the ISBI 2012 membranes (torchvision has no loader for them), verified against
the manifest before they appear under the data root."""

from __future__ import annotations

import os
import shutil
import urllib.request
from pathlib import Path

from labutils.data.integrity import (DataIntegrityError, DataMissingError, _manifest,
                                     tree_digest)

# The PNGs of Ronneberger et al.'s ISBI 2012 data as kept in github.com/zhixuhao/unet, at a fixed
# commit; the offline copy is byte-identical, so the manifest's digest checks a download too.
ISBI_COMMIT = "909ae9b5fefd8a55900e24a771b073b1d4ef70ff"
ISBI_URL = f"https://raw.githubusercontent.com/zhixuhao/unet/{ISBI_COMMIT}/data/membrane"
ISBI_FILES = tuple(f"{folder}/{i}.png" for folder in ("train/image", "train/label", "test")
                   for i in range(30))


def download_isbi_membranes(root: Path, *, base_url: str | None = None,
                            timeout_s: float = 30.0) -> Path:
    """Download the 90 PNGs into ``root/isbi2012-membranes`` and check them; return the folder.

    ``base_url``: the folder that holds ``train/image``, ``train/label`` and ``test`` (default:
    ``ISBI_URL``, read when called).
    The files go to a temporary folder next to it, which is renamed only after the digest
    matches the manifest, so an interrupted or damaged download leaves nothing half-written.
    Raises ``DataMissingError`` when a file cannot be fetched (offline) and
    ``DataIntegrityError`` when the files differ from the manifest.
    """
    base_url = base_url or ISBI_URL
    root = Path(root)
    target = root / "isbi2012-membranes"
    if target.exists():
        raise FileExistsError(f"{target} exists already; delete it to download it again")
    made_root = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    partial = root / f".isbi2012-membranes.partial-{os.getpid()}"
    try:
        for rel in ISBI_FILES:
            url = f"{base_url.rstrip('/')}/{rel}"
            path = partial / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                with urllib.request.urlopen(url, timeout=timeout_s) as response:
                    path.write_bytes(response.read())
            except OSError as err:  # URLError, HTTPError, timeouts: all OSErrors
                raise DataMissingError(
                    f"The ISBI 2012 membrane data is not under the data root {root} and "
                    f"downloading {url} failed ({type(err).__name__}: {err}). Run where the "
                    f"internet is reachable, or copy the folder isbi2012-membranes (train/image, "
                    f"train/label and test, 30 PNGs each) into a folder and set LAB_DATA to "
                    f"it.") from err
        got, want = tree_digest(partial), _manifest()["isbi2012-membranes"]["tree"]
        if got != want:
            raise DataIntegrityError(
                f"the ISBI 2012 membranes downloaded from {base_url} do not match the manifest "
                f"({got['files']} files, {got['bytes']} bytes; expected {want['files']} files, "
                f"{want['bytes']} bytes, or the contents differ); nothing was kept. Try again "
                f"later, or copy a good isbi2012-membranes folder into the folder LAB_DATA "
                f"names.")
        os.replace(partial, target)
    finally:  # after a failure or an interrupt: no partial folder, no data root we made
        shutil.rmtree(partial, ignore_errors=True)
        if made_root and root.is_dir() and not any(root.iterdir()):
            root.rmdir()
    return target
