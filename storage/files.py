"""Files by content: the store of uploaded audio, and the sha256 digests that name files and checkpoints."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path


def private_dir(path: Path) -> Path:
    """`path`, made if missing for the service's user alone (0700: recordings are people's words); a
    folder that exists already keeps its mode (it may be shared, like /tmp)."""
    if not path.exists():
        path.mkdir(mode=0o700, parents=True)
        path.chmod(0o700)  # mkdir's mode passes through the umask
    return path


def _feed(digest, path: Path) -> None:
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            digest.update(block)


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    _feed(digest, Path(path))
    return digest.hexdigest()


def file_digests(folder: Path, leave_out: str = "") -> dict[str, str]:
    """{path relative to `folder`: sha256} of every file under it (but one named `leave_out`): a manifest."""
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != leave_out}


def sha256_tree(directory: str | Path) -> str:
    """One digest of every file under a folder (names and bytes), in a fixed order: a checkpoint's identity."""
    digest = hashlib.sha256()
    root = Path(directory)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        _feed(digest, path)
    return digest.hexdigest()


def store_audio(path: Path, sha256: str, root: Path) -> tuple[Path, bool]:
    """Copies the file (whose digest is `sha256`) to <root>/<sha[:2]>/<sha><suffix>, atomically; same
    content, same file.

    Returns the path and whether this call created it (so a failed caller can take it back).
    """
    dest = root / sha256[:2] / f"{sha256}{path.suffix.lower()}"
    if dest.exists():
        return dest, False
    private_dir(root)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, suffix=".part")
    os.close(fd)
    try:
        shutil.copyfile(path, tmp)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest, True
