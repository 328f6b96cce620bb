"""Accepting an uploaded file: detect its type from its bytes, cap it, clean it, store it.

- The type comes from the content (magic bytes and structure), never from the filename or
  a client's Content-Type; anything we cannot positively identify is refused (INTEROP
  §7.13, CVE-2023-36460).
- Images are decoded only after their header passed the pixel cap (decompression bombs),
  then re-encoded: this drops EXIF/GPS and any appended payload (polyglots), and applies
  the EXIF orientation first. A WebP thumbnail (≤ THUMB_SIZE px) is made for the photo
  library and previews.
- The original filename is kept only as sanitised display text.
Pillow's CPU work runs in a thread.
"""

from __future__ import annotations

import asyncio
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from typing import Final

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.db.models import Actor
from t3r1_fed.db.models_coops import Media
from t3r1_fed.media.blurhash import blurhash
from t3r1_fed.media.quota import over_quota
from t3r1_fed.media.storage import new_key

THUMB_SIZE: Final = 400
MAX_FRAMES: Final = 500
MAX_ZIP_ENTRIES: Final = 10_000
MAX_ZIP_UNCOMPRESSED: Final = 512 * 1024 * 1024
MAX_FILENAME_CHARS: Final = 200

# Detected media type → key suffix. The only suffixes a stored file can have.
SUFFIXES: Final = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/gif": "gif",
    "image/webp": "webp",
    "application/pdf": "pdf",
    "application/vnd.oasis.opendocument.text": "odt",
    "application/vnd.oasis.opendocument.spreadsheet": "ods",
    "application/vnd.oasis.opendocument.presentation": "odp",
    "application/vnd.oasis.opendocument.text-template": "ott",
    "application/vnd.oasis.opendocument.spreadsheet-template": "ots",
    "application/vnd.oasis.opendocument.presentation-template": "otp",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.template": "dotx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.template": "xltx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    "application/vnd.openxmlformats-officedocument.presentationml.template": "potx",
    "text/plain": "txt",
    "text/markdown": "md",
    "text/csv": "csv",
}
IMAGE_TYPES: Final = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF",
                      "image/webp": "WEBP"}  # fmt: skip
_OOXML_MAIN: Final = {
    f"application/vnd.openxmlformats-officedocument.{part}.main+xml": f"application/vnd.openxmlformats-officedocument.{kind}"  # noqa: E501
    for part, kind in (
        ("wordprocessingml.document", "wordprocessingml.document"),
        ("wordprocessingml.template", "wordprocessingml.template"),
        ("spreadsheetml.sheet", "spreadsheetml.sheet"),
        ("spreadsheetml.template", "spreadsheetml.template"),
        ("presentationml.presentation", "presentationml.presentation"),
        ("presentationml.template", "presentationml.template"),
    )
}


class UploadRefused(ValueError):
    """The file is not accepted; `status` is the HTTP status an API should answer."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


class QuotaExceeded(UploadRefused):
    """The member's (or the cooperative's) storage quota would be exceeded (media/quota.py)."""


@dataclass(frozen=True)
class Processed:
    media_type: str
    data: bytes  # what we store (re-encoded for images)
    width: int | None = None
    height: int | None = None
    thumbnail: bytes | None = None  # WebP
    blurhash: str | None = None


# --- detection ----------------------------------------------------------------------------


def _zip_type(data: bytes) -> str | None:
    """ODF (a `mimetype` first entry) or OOXML (`[Content_Types].xml`) documents."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return None
    if not infos or len(infos) > MAX_ZIP_ENTRIES:
        return None
    if sum(i.file_size for i in infos) > MAX_ZIP_UNCOMPRESSED:
        return None
    names = {i.filename: i for i in infos}
    try:
        if infos[0].filename == "mimetype" and infos[0].file_size <= 128:
            declared = zf.read(infos[0]).decode("ascii", "replace").strip()
            return declared if declared in SUFFIXES else None
        ct = names.get("[Content_Types].xml")
        if ct is not None and ct.file_size <= 1_000_000:
            xml = zf.read(ct).decode("utf-8", "replace")
            for marker, media_type in _OOXML_MAIN.items():
                if f'ContentType="{marker}"' in xml:
                    return media_type
    except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError, EOFError):
        return None
    return None


def sniff(data: bytes, filename: str | None = None) -> str:
    """The media type of `data`, from its content; raises UploadRefused if unknown.

    `filename` only chooses among the text types (Markdown, CSV or plain text), all of
    which are served as downloads.
    """
    head = data[:16]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        if b"%%EOF" not in data[-2048:]:
            raise UploadRefused("truncated or malformed PDF")
        if zipfile.is_zipfile(io.BytesIO(data)):
            raise UploadRefused("file is both a PDF and an archive")
        return "application/pdf"
    if head.startswith(b"PK\x03\x04"):
        found = _zip_type(data)
        if found is None:
            raise UploadRefused("unsupported archive: only ODF and Office documents")
        return found
    if b"\x00" not in data:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            ext = (filename or "").rsplit(".", 1)[-1].lower() if "." in (filename or "") else ""
            return {"md": "text/markdown", "markdown": "text/markdown", "csv": "text/csv"}.get(
                ext, "text/plain"
            )
    raise UploadRefused("unsupported file type")


# --- images -----------------------------------------------------------------------------


def _process_image(data: bytes, media_type: str, max_pixels: int) -> Processed:
    fmt = IMAGE_TYPES[media_type]
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as img:
            width, height = img.size  # from the header: nothing decoded yet
            frames = getattr(img, "n_frames", 1)
            if width < 1 or height < 1 or width * height > max_pixels:
                raise UploadRefused(f"image larger than {max_pixels} pixels", 413)
            # Every frame is decoded (RGBA) to re-encode an animation: cap their total.
            animated = frames > 1
            if animated and (frames > MAX_FRAMES or width * height * frames > max_pixels // 4):
                raise UploadRefused("animation too large", 413)
            out = io.BytesIO()
            if animated:
                # Animated GIF/WebP: fresh frames carrying pixels and timing only.
                loop = img.info.get("loop", 0)
                copies, durations = [], []
                for frame in ImageSequence.Iterator(img):
                    durations.append(frame.info.get("duration", 100))
                    rgba = frame.convert("RGBA")
                    copies.append(Image.frombytes("RGBA", rgba.size, rgba.tobytes()))
                copies[0].save(out, format=fmt, save_all=True, append_images=copies[1:],
                               loop=loop, duration=durations)  # fmt: skip
                first = copies[0]
            else:
                img.load()
                first = ImageOps.exif_transpose(img)
                for meta in ("comment", "exif", "xmp", "XML:com.adobe.xmp", "photoshop"):
                    first.info.pop(meta, None)
                if fmt == "JPEG" and first.mode not in ("RGB", "L"):
                    first = first.convert("RGB")
                options: dict[str, object] = {"quality": 90} if fmt in ("JPEG", "WEBP") else {}
                first.save(out, format=fmt, **options)
            width, height = first.size
            thumb = first.convert("RGBA" if first.mode in ("RGBA", "LA", "P") else "RGB")
            thumb.thumbnail((THUMB_SIZE, THUMB_SIZE))
            tbuf = io.BytesIO()
            thumb.save(tbuf, format="WEBP", quality=80)
            placeholder = blurhash(thumb)
    except UploadRefused:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as e:
        raise UploadRefused(f"unreadable image: {e}") from e
    except Image.DecompressionBombError as e:
        raise UploadRefused("image too large", 413) from e
    return Processed(media_type, out.getvalue(), width, height, tbuf.getvalue(), placeholder)


def process(data: bytes, filename: str | None, max_bytes: int, max_pixels: int) -> Processed:
    """Detect, check and clean an upload (CPU-bound: call it in a thread)."""
    if len(data) > max_bytes:
        raise UploadRefused(f"file larger than {max_bytes} bytes", 413)
    if not data:
        raise UploadRefused("empty file")
    media_type = sniff(data, filename)
    if media_type in IMAGE_TYPES:
        return _process_image(data, media_type, max_pixels)
    return Processed(media_type, data)


def display_filename(name: str | None) -> str | None:
    """A filename fit for display and a Content-Disposition: no path, no control chars."""
    if not name:
        return None
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")
    name = re.sub(r"\s+", " ", name).strip(" .")
    return name[:MAX_FILENAME_CHARS] or None


# --- the service ----------------------------------------------------------------------------


def media_url(ctx: Context, key: str) -> str:
    return f"{ctx.uris.base}/media/{key}"


def thumb_url(ctx: Context, media: Media) -> str | None:
    return f"{media_url(ctx, media.key)}/thumb" if media.thumbnail_key else None


async def upload(
    ctx: Context,
    session: AsyncSession,
    owner: Actor,
    data: bytes,
    *,
    filename: str | None = None,
    description: str | None = None,
    coop_actor_id: int | None = None,
) -> Media:
    """Store an upload by `owner` and return its (flushed) Media row, not yet attached.

    Raises UploadRefused (413 for size/pixel caps, 422 otherwise; QuotaExceeded, 422, when
    the owner's or the cooperative's storage quota would be exceeded). Files written before a
    later failure in the caller's transaction are removed by `discard`.
    """
    s = ctx.settings
    done = await asyncio.to_thread(process, data, filename, s.media_max_bytes, s.media_max_pixels)
    refused = await over_quota(session, owner, len(done.data), member_quota=s.media_quota_bytes,
                               coop_actor_id=coop_actor_id, coop_quota=s.coop_media_quota_bytes)
    if refused is not None:  # checked before anything is written
        raise QuotaExceeded(refused)
    key = new_key(SUFFIXES[done.media_type])
    await ctx.media.put(key, done.data, done.media_type)
    thumb_key = None
    if done.thumbnail is not None:
        thumb_key = new_key("webp")
        await ctx.media.put(thumb_key, done.thumbnail, "image/webp")
    row = Media(
        key=key,
        owner_id=owner.id,
        coop_actor_id=coop_actor_id,
        media_type=done.media_type,
        size=len(done.data),
        width=done.width,
        height=done.height,
        description=(description or "").strip()[:1500] or None,
        filename=display_filename(filename),
        thumbnail_key=thumb_key,
        blurhash=done.blurhash,
    )
    session.add(row)
    await session.flush()
    return row


async def discard(ctx: Context, media: Media) -> None:
    """Remove a stored upload's files (after its transaction failed)."""
    if media.remote_url is None:
        await ctx.media.delete(media.key)
        if media.thumbnail_key:
            await ctx.media.delete(media.thumbnail_key)
