"""The ISBI 2012 download, against a local HTTP server on 127.0.0.1 serving the offline files
in the layout of the zhixuhao/unet repository's data/membrane folder."""

import functools
import http.server
import shutil
import socket
import threading

import pytest
import torch

from labutils.data import DataIntegrityError, DataMissingError, isbi_membranes
from labutils.data import download as dl


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    """serve(folder) -> the base URL of an HTTP server on 127.0.0.1 that serves ``folder``."""
    servers = []

    def start(folder):
        handler = functools.partial(_Quiet, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _leftovers(root):
    return sorted(p.name for p in root.iterdir()) if root.exists() else None


def test_the_url_names_the_fixed_commit():
    assert dl.ISBI_URL == ("https://raw.githubusercontent.com/zhixuhao/unet/"
                           "909ae9b5fefd8a55900e24a771b073b1d4ef70ff/data/membrane")
    assert len(dl.ISBI_FILES) == 90 and "train/label/29.png" in dl.ISBI_FILES


def test_download_verifies_and_isbi_membranes_reads_it(real_data, serve, tmp_path):
    url = serve(real_data / "isbi2012-membranes")
    root = tmp_path / "data"  # not there yet: made by the download
    folder = dl.download_isbi_membranes(root, base_url=url)
    assert folder == root / "isbi2012-membranes" and _leftovers(root) == ["isbi2012-membranes"]
    assert len(list(folder.rglob("*.png"))) == 90
    offline = isbi_membranes("train", root=real_data)
    downloaded = isbi_membranes("train", root=root, download=False)
    assert torch.equal(downloaded.images, offline.images)
    assert torch.equal(downloaded.masks, offline.masks)


def test_isbi_membranes_downloads_when_the_folder_is_missing(real_data, serve, tmp_path,
                                                             monkeypatch):
    monkeypatch.setattr(dl, "ISBI_URL", serve(real_data / "isbi2012-membranes"))
    test = isbi_membranes("test", root=tmp_path)
    assert test.images.shape == (30, 1, 512, 512) and test.masks is None


def test_a_corrupted_file_is_an_integrity_error_and_nothing_is_kept(real_data, serve, tmp_path):
    served = tmp_path / "served"
    shutil.copytree(real_data / "isbi2012-membranes", served)
    target = served / "train" / "label" / "7.png"
    target.chmod(0o644)
    blob = bytearray(target.read_bytes())
    blob[-20] ^= 0xFF
    target.write_bytes(bytes(blob))
    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(DataIntegrityError, match="do not match the manifest.*nothing was kept"):
        dl.download_isbi_membranes(root, base_url=serve(served))
    assert _leftovers(root) == []  # no half-written folder, no partial files


def test_a_missing_file_is_a_missing_data_error_and_nothing_is_kept(real_data, serve, tmp_path):
    served = tmp_path / "served"
    shutil.copytree(real_data / "isbi2012-membranes", served)
    (served / "test" / "29.png").unlink()  # the server answers 404
    root = tmp_path / "data"
    with pytest.raises(DataMissingError, match=r"test/29.png failed \(HTTPError.*set LAB_DATA"):
        dl.download_isbi_membranes(root, base_url=serve(served))
    assert _leftovers(root) is None  # the data root it made is gone too


def test_offline_is_a_missing_data_error_that_says_what_to_do(tmp_path):
    with socket.socket() as s:  # a port on which nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataMissingError) as err:
        dl.download_isbi_membranes(tmp_path, base_url=f"http://127.0.0.1:{port}", timeout_s=5)
    msg = str(err.value)
    assert "internet" in msg and "LAB_DATA" in msg and "machines" not in msg
    assert _leftovers(tmp_path) == []
