"""Checksum-verified downloads written atomically, for users who have a network."""

import hashlib
import os
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_verified(urls: list[str], destination: Path, md5: str, timeout: float = 30.0) -> None:
    """Fetches the first of ``urls`` that answers, checks its MD5, then moves it into place.

    The file is written to a temporary name in the destination folder and renamed only once its
    checksum matches, so an interrupted download never leaves a file that looks complete.

    Raises:
        OSError: no URL answered with the expected bytes; the message lists each URL's failure.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        handle, temporary = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.")
        try:
            with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    out.write(chunk)
            actual = md5_of(Path(temporary))
            if actual != md5:
                failures.append(f"{url}: checksum {actual} is not the expected {md5}")
                continue
            os.replace(temporary, destination)
            return
        except (urllib.error.URLError, OSError, ValueError) as error:
            failures.append(f"{url}: {getattr(error, 'reason', error)}")
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)
    raise OSError("; ".join(failures))


def unpack_tar(archive: Path, folder: Path, destination_of: Callable[[str], str | None]) -> None:
    """Writes the regular files of a tar archive below ``folder``.

    ``destination_of`` maps a member's name to its path relative to ``folder``, or None to skip it.
    A destination that would land outside ``folder`` (``..`` or an absolute path) is refused.

    Raises:
        OSError: a member's destination is outside ``folder``.
    """
    folder = folder.resolve()
    with tarfile.open(archive) as tar:
        for member in tar:
            relative = destination_of(member.name) if member.isfile() else None
            if relative is None:
                continue
            path = (folder / relative).resolve()
            if not path.is_relative_to(folder):
                raise OSError(f"{archive}: member {member.name} would be written outside {folder}")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(tar.extractfile(member).read())


def download_and_unpack(urls: list[str], md5: str, folder: Path, destination_of: Callable[[str], str | None]) -> None:
    """Downloads a checksummed tar archive into ``folder``, unpacks it there, then deletes it.

    See ``download_verified`` for the download and ``unpack_tar`` for ``destination_of``.

    Raises:
        OSError: no URL gave the archive, or a member would land outside ``folder``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / f".download-{md5}.tar"
    download_verified(urls, archive, md5, timeout=60.0)
    try:
        unpack_tar(archive, folder, destination_of)
    finally:
        archive.unlink()
