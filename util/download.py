"""Resumable, atomic HTTP(S) downloads (Google Drive's confirm page included) and archive extraction.

``fetch(url, dest)`` writes ``<dest>.part`` and renames it to ``dest`` only once it is complete, its
SHA-256 matches (when one is given) and ``verify`` accepts it, so ``dest`` never exists half written.
A lost connection is resumed from the bytes already on disk (HTTP Range), within the call and on the
next call after an interruption (the ``.part`` file stays for that). No network: one-line
``DownloadError``.
"""
import hashlib
import html.parser
import http.client
import http.cookiejar
import os
import re
import shutil
import socket
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm

DRIVE_URL = "https://drive.google.com/uc"   # Google Drive's download endpoint (the published scripts' URL)
CHUNK = 1 << 20
HTML_LIMIT = 1 << 20   # a confirm page is small; anything larger that claims to be HTML is an error


class DownloadError(RuntimeError):
    """A download that cannot complete; the message is one line naming the URL or file."""


class _Interrupted(Exception):
    pass


def drive_file_url(file_id, base=DRIVE_URL):
    """Download URL of a Google-Drive file id (``base`` may point at a mirror with the same scheme)."""
    return f"{base}?export=download&id={urllib.parse.quote(file_id)}"


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def partial_path(dest):
    dest = Path(dest)
    return dest.with_name(dest.name + ".part")


def fetch(url, dest, sha256=None, verify=None, retries=3, timeout=60, progress=True):
    """Download ``url`` to ``dest`` (see the module doc); returns the file's SHA-256.

    ``verify(path)`` is called on the complete ``.part`` file and raises to reject it (the file is
    then removed)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = partial_path(dest)
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    for attempt in range(retries + 1):
        try:
            _fetch_once(opener, url, part, timeout, progress)
            break
        except _Interrupted as cut:
            if attempt == retries:
                raise DownloadError(f"{url}: the connection was lost ({cut}); {part} keeps what arrived, "
                                    f"run again to resume") from None
    digest = sha256_of(part)
    try:
        if sha256 is not None and digest != sha256.lower():
            raise DownloadError(f"{url}: SHA-256 {digest} of the download is not the published {sha256}")
        if verify is not None:
            verify(part)
    except BaseException:
        part.unlink()
        raise
    os.replace(part, dest)
    return digest


def _describe_network_error(url, error):
    host = urllib.parse.urlsplit(url).netloc
    reason = getattr(error, "reason", error)
    return f"cannot reach {host} ({reason}); no internet connection here?"


def _open(opener, url, offset, timeout, part):
    """The response holding the file's bytes from ``offset``, through a confirm page if one comes."""
    headers = {"User-Agent": "Mozilla/5.0 (download script)"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    for _ in range(3):   # the file itself, or at most two confirm pages before it
        try:
            response = opener.open(urllib.request.Request(url, headers=headers), timeout=timeout)
        except urllib.error.HTTPError as error:
            if error.code == 416 and offset:   # nothing left after the bytes already here: restart
                part.unlink()
                return _open(opener, url, 0, timeout, part)
            raise DownloadError(f"{url}: HTTP {error.code} {error.reason}") from None
        except (urllib.error.URLError, socket.timeout, ConnectionError) as error:
            raise DownloadError(_describe_network_error(url, error)) from None
        if not response.headers.get_content_type().startswith("text/html"):
            return response
        page = response.read(HTML_LIMIT).decode("utf-8", "replace")
        response.close()
        next_url = confirm_url(page, response.geturl())
        if next_url is None:
            raise DownloadError(f"{url}: the server sent a web page instead of the file (Google Drive: "
                                f"download quota exceeded, or the file is not shared); try later or "
                                f"download it in a browser")
        url = next_url
    raise DownloadError(f"{url}: confirm pages did not lead to the file")


def _fetch_once(opener, url, part, timeout, progress):
    offset = part.stat().st_size if part.exists() else 0
    response = _open(opener, url, offset, timeout, part)
    with response:
        if response.status == 206 and _range_start(response) == offset:
            mode = "ab"
        else:   # the server sends the whole file (no Range support): start over
            offset, mode = 0, "wb"
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        received = offset
        with open(part, mode) as out, tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                                           desc=part.name[:-len(".part")], disable=not progress,
                                           leave=False) as bar:
            try:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            except (http.client.IncompleteRead, ConnectionError, socket.timeout) as error:
                raise _Interrupted(f"after {received} of {total} bytes: {type(error).__name__}") from None
    if total is not None and received < total:
        raise _Interrupted(f"after {received} of {total} bytes")


def _range_start(response):
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


class _ConfirmForm(html.parser.HTMLParser):
    """The first form of a page with its hidden inputs, and any link carrying ``confirm=``."""

    def __init__(self):
        super().__init__()
        self.action, self.fields, self.link, self._in_form = None, {}, None, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and self.action is None:
            self.action, self._in_form = attrs.get("action"), True
        elif tag == "input" and self._in_form and attrs.get("name"):
            self.fields[attrs["name"]] = attrs.get("value") or ""
        elif tag == "a" and self.link is None and "confirm=" in (attrs.get("href") or ""):
            self.link = attrs["href"]

    def handle_endtag(self, tag):
        if tag == "form":
            self._in_form = False


def confirm_url(page, page_url):
    """Where Google Drive's "cannot scan this file for viruses" page sends its Download button:
    its form (action + hidden inputs) or, on older pages, a link with ``confirm=``; None if neither."""
    form = _ConfirmForm()
    form.feed(page)
    if form.action and "id" in form.fields:
        return urllib.parse.urljoin(page_url, form.action) + "?" + urllib.parse.urlencode(form.fields)
    if form.link:
        return urllib.parse.urljoin(page_url, form.link)
    return None


def extract(archive, into, progress=True):
    """Unpack a .zip or .tar(.gz) ``archive`` into the folder ``into``; members may not leave it."""
    archive, into = Path(archive), Path(into)
    into.mkdir(parents=True, exist_ok=True)
    root = into.resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for member in tqdm(zf.infolist(), desc=f"extract {archive.name}", unit="file", disable=not progress,
                               leave=False):
                target = (into / member.filename).resolve()
                if root not in target.parents and target != root:
                    raise DownloadError(f"{archive}: member {member.filename} would be written outside {into}")
                zf.extract(member, into)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            for member in tqdm(tf, desc=f"extract {archive.name}", unit="file", disable=not progress, leave=False):
                try:
                    tf.extract(member, into, filter="data")
                except tarfile.FilterError as error:
                    raise DownloadError(f"{archive}: member {member.name} refused ({error})") from None
    else:
        raise DownloadError(f"{archive}: neither a zip nor a tar archive (an error page saved as the file?)")


def replace_folder(staging, target):
    """Move the complete folder ``staging`` to ``target`` (one rename; ``target`` must not exist)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, target)


def remove_tree(path):
    if Path(path).exists():
        shutil.rmtree(path)
