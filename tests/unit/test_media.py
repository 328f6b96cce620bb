"""Upload processing: type from content, caps, EXIF stripping, thumbnails, storage keys."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from PIL import Image

from t3r1_fed.media.blurhash import CHARS
from t3r1_fed.media.storage import LocalStorage, StorageError, new_key
from t3r1_fed.media.upload import THUMB_SIZE, UploadRefused, display_filename, process, sniff

MB = 1024 * 1024
CAP = 40_000_000


def _png(w: int = 32, h: int = 24, color: tuple[int, int, int] = (200, 10, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, format="PNG")
    return buf.getvalue()


def _jpeg_with_exif(w: int = 1200, h: int = 800) -> bytes:
    img = Image.new("RGB", (w, h), (10, 120, 200))
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"  # Make
    exif[0x0112] = 6  # Orientation: rotate 90°
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 0.0)}  # GPS latitude
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes())
    return buf.getvalue()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


def _bomb_png(w: int = 100_000, h: int = 100_000) -> bytes:
    """A tiny PNG whose header claims 10 gigapixels (a decompression bomb's shape)."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    chunks = _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def _zip(entries: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries:
            method = zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED
            zf.writestr(name, data, compress_type=method)
    return buf.getvalue()


def test_sniff_known_types() -> None:
    assert sniff(_png()) == "image/png"
    assert sniff(_jpeg_with_exif(10, 10)) == "image/jpeg"
    assert sniff(b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n") == "application/pdf"
    odt = _zip([("mimetype", b"application/vnd.oasis.opendocument.text"), ("content.xml", b"<x/>")])
    assert sniff(odt) == "application/vnd.oasis.opendocument.text"
    docx = _zip([
        ("[Content_Types].xml", b'<Types><Override PartName="/word/document.xml" ContentType='
         b'"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
         b"</Types>"),
        ("word/document.xml", b"<w/>"),
    ])  # fmt: skip
    assert sniff(docx) == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    assert sniff("Ordre du jour : grève\n".encode()) == "text/plain"
    assert sniff(b"# Tract\n", "tract.md") == "text/markdown"
    assert sniff(b"a,b\n1,2\n", "liste.csv") == "text/csv"


def test_type_comes_from_content_not_name() -> None:
    # A PNG renamed .pdf is a PNG; a PDF renamed .png is a PDF.
    assert sniff(_png(), "statuts.pdf") == "image/png"
    done = process(_png(), "statuts.pdf", 20 * MB, CAP)
    assert done.media_type == "image/png"
    assert sniff(b"%PDF-1.4\n%%EOF", "photo.png") == "application/pdf"


@pytest.mark.parametrize(
    "data",
    [
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00",  # a Windows executable
        b"\x00\x01\x02garbage\xff\xfe",  # binary garbage
        b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10,  # PNG magic, no image
        b"GIF89a/*<script>alert(1)</script>*/",  # GIF/JavaScript polyglot
        _zip([("evil.exe", b"MZ")]),  # an arbitrary archive
        _zip([("mimetype", b"application/x-msdownload"), ("a", b"b")]),
        b"%PDF-1.4\n" + b"x" * 4000,  # no %%EOF: not a PDF
    ],
)
def test_garbage_and_polyglots_refused(data: bytes) -> None:
    with pytest.raises(UploadRefused):
        process(data, "tract.pdf", 20 * MB, CAP)


def test_pdf_zip_polyglot_refused() -> None:
    polyglot = b"%PDF-1.4\n" + _zip([("a.txt", b"x")]) + b"\n%%EOF\n"
    with pytest.raises(UploadRefused, match="both"):
        sniff(polyglot)


def test_png_with_appended_zip_is_reencoded_clean() -> None:
    data = _png() + _zip([("payload.html", b"<script>x</script>")])
    done = process(data, None, 20 * MB, CAP)
    assert done.media_type == "image/png"
    assert b"payload.html" not in done.data and b"<script>" not in done.data


def test_size_cap() -> None:
    with pytest.raises(UploadRefused) as e:
        process(b"a" * (MB + 1), "x.txt", MB, CAP)
    assert e.value.status == 413
    assert process(b"a" * MB, "x.txt", MB, CAP).media_type == "text/plain"


def test_pixel_cap_checked_before_decoding() -> None:
    bomb = _bomb_png()
    assert len(bomb) < 2000
    with pytest.raises(UploadRefused) as e:
        process(bomb, "bomb.png", 20 * MB, CAP)
    assert e.value.status == 413
    with pytest.raises(UploadRefused):
        process(_png(100, 100), None, 20 * MB, 5_000)


def test_exif_stripped_and_orientation_applied() -> None:
    original = _jpeg_with_exif()
    assert b"CameraMaker" in original
    done = process(original, "photo.jpg", 20 * MB, CAP)
    assert b"CameraMaker" not in done.data
    with Image.open(io.BytesIO(done.data)) as img:
        assert not img.getexif()
        assert img.size == (800, 1200)  # rotated by the Orientation tag, then dropped
    assert (done.width, done.height) == (800, 1200)


def test_thumbnail_size() -> None:
    done = process(_jpeg_with_exif(2000, 1000), None, 20 * MB, CAP)
    assert done.thumbnail is not None
    with Image.open(io.BytesIO(done.thumbnail)) as thumb:
        assert thumb.format == "WEBP"
        assert max(thumb.size) == THUMB_SIZE
    assert process(b"text", None, MB, CAP).thumbnail is None


def test_blurhash_placeholder() -> None:
    from t3r1_fed.vocab.shapes import BLURHASH_RE

    red = process(_png(64, 48), None, MB, CAP).blurhash
    assert red is not None and len(red) == 28 and BLURHASH_RE.fullmatch(red)
    # 4×3 components ("L"); the average colour (DC) decodes back to the image's colour
    assert red[0] == "L"
    dc = sum(CHARS.index(c) * 83 ** (3 - i) for i, c in enumerate(red[2:6]))
    assert (dc >> 16, (dc >> 8) & 255, dc & 255) == (200, 10, 10)
    blue = process(_png(64, 48, (10, 10, 200)), None, MB, CAP).blurhash
    assert blue != red


def test_display_filename_is_never_a_path() -> None:
    assert display_filename("../../etc/passwd") == "passwd"
    assert display_filename("..\\..\\boot.ini") == "boot.ini"
    assert display_filename("tract\x00.pdf\n") == "tract.pdf"
    assert display_filename("..") is None
    assert display_filename("Tract grève 1er mai.pdf") == "Tract grève 1er mai.pdf"


async def test_local_storage_keys(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    key = new_key("png")
    await store.put(key, b"abc", "image/png")
    assert await store.get(key) == b"abc"
    assert await store.size(key) == 3
    await store.delete(key)
    assert await store.size(key) is None
    for bad in ("../x.png", "a" * 32 + ".png/../../x", "ABCDEF.png", "x"):
        with pytest.raises(StorageError):
            await store.get(bad)
    assert new_key("pdf") != new_key("pdf")


def test_content_disposition() -> None:
    from t3r1_fed.handlers.media import content_disposition

    assert content_disposition("application/pdf", "tract.pdf", "k.pdf") == (
        "attachment; filename=\"tract.pdf\"; filename*=UTF-8''tract.pdf"
    )
    # the extension follows the detected type; quotes and non-ASCII never break the header
    got = content_disposition("image/png", 'affiche "grève".exe', "k.png")
    assert got.startswith('inline; filename="affiche _gr_ve_.png"; filename*=UTF-8\'\'')
    assert got.endswith("affiche%20%22gr%C3%A8ve%22.png")
    assert content_disposition("text/plain", None, "0a1b.txt").startswith(
        'attachment; filename="0a1b.txt"'
    )


@pytest.mark.parametrize(
    ("fmt", "animated"),
    [("PNG", False), ("WEBP", False), ("GIF", False), ("WEBP", True), ("GIF", True)],
)
def test_metadata_stripped_in_every_format(fmt: str, animated: bool) -> None:
    frames = [Image.new("RGB", (20, 20), (i * 40, 0, 0)) for i in range(3 if animated else 1)]
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"
    meta = {"comment": b"CameraMaker"} if fmt == "GIF" else {"exif": exif.tobytes()}
    buf = io.BytesIO()
    frames[0].save(buf, format=fmt, save_all=animated, append_images=frames[1:], **meta)
    assert b"CameraMaker" in buf.getvalue()
    done = process(buf.getvalue(), None, MB, CAP)
    assert b"CameraMaker" not in done.data
    with Image.open(io.BytesIO(done.data)) as img:
        assert getattr(img, "n_frames", 1) == len(frames)


def test_animation_cap() -> None:
    frames = [Image.new("RGB", (100, 100), (i, 0, 0)) for i in range(30)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(UploadRefused, match="animation"):
        process(buf.getvalue(), None, MB, 4 * 100 * 100 * 29)
    assert process(buf.getvalue(), None, MB, 4 * 100 * 100 * 30).media_type == "image/gif"
