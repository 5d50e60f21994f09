"""Documents to plain text: plain text, Markdown, HTML and PDF.

The type comes from the file name's extension, then the declared media type; PDF content must
also look like a PDF. Text files must be UTF-8 (a BOM is dropped). Refusals are
``BadInputError``s whose codes tell the gateway their status: unsupported 415, too large 413,
empty or unreadable 422.
"""

from __future__ import annotations

import io
import logging
import re
from enum import StrEnum
from html.parser import HTMLParser
from pathlib import PurePath

from parley_common.errors import BadInputError

__all__ = [
    "DOCUMENT_EMPTY",
    "DOCUMENT_TOO_LARGE",
    "DOCUMENT_UNREADABLE",
    "DOCUMENT_UNSUPPORTED",
    "DocumentType",
    "check_size",
    "clean_filename",
    "detect_type",
    "extract_text",
]

log = logging.getLogger(__name__)

DOCUMENT_UNSUPPORTED = "document_unsupported"
DOCUMENT_TOO_LARGE = "document_too_large"
DOCUMENT_EMPTY = "document_empty"
DOCUMENT_UNREADABLE = "document_unreadable"


class DocumentType(StrEnum):
    """The document formats a knowledge base takes, by the media type stored with each."""

    TEXT = "text/plain"
    MARKDOWN = "text/markdown"
    HTML = "text/html"
    PDF = "application/pdf"


_BY_EXTENSION = {
    ".txt": DocumentType.TEXT,
    ".text": DocumentType.TEXT,
    ".md": DocumentType.MARKDOWN,
    ".markdown": DocumentType.MARKDOWN,
    ".html": DocumentType.HTML,
    ".htm": DocumentType.HTML,
    ".pdf": DocumentType.PDF,
}
_BY_MEDIA_TYPE = {
    "text/plain": DocumentType.TEXT,
    "text/markdown": DocumentType.MARKDOWN,
    "text/x-markdown": DocumentType.MARKDOWN,
    "text/html": DocumentType.HTML,
    "application/xhtml+xml": DocumentType.HTML,
    "application/pdf": DocumentType.PDF,
}
_ACCEPTED = "txt, md, html or pdf"


def clean_filename(filename: str | None) -> str:
    """The name a document is stored and listed under: its last path part, without control
    characters (PostgreSQL text cannot hold NUL), at most 255 characters."""
    name = PurePath((filename or "").replace("\\", "/")).name
    name = "".join(c for c in name if c.isprintable()).strip()
    return name[:255] or "document"


def check_size(size: int, max_bytes: int) -> None:
    """Refuse a document over ``max_bytes`` (413) or with no bytes at all (422)."""
    if size > max_bytes:
        raise BadInputError(
            f"the document has {size} bytes; at most {max_bytes} are accepted",
            code=DOCUMENT_TOO_LARGE,
        )
    if size == 0:
        raise BadInputError("the document is empty", code=DOCUMENT_EMPTY)


def detect_type(filename: str | None, media_type: str | None, data: bytes) -> DocumentType:
    """The document's type from its name, else its declared media type (415 when neither is
    one Parley reads, or when a "PDF" is not one)."""
    suffix = PurePath(filename or "").suffix.lower()
    declared = (media_type or "").split(";")[0].strip().lower()
    kind = _BY_EXTENSION.get(suffix) or _BY_MEDIA_TYPE.get(declared)
    if kind is None:
        named = suffix or declared or "a file without a type"
        raise BadInputError(
            f"{named} documents are not supported; send {_ACCEPTED}", code=DOCUMENT_UNSUPPORTED
        )
    if kind is DocumentType.PDF and not data.lstrip()[:5] == b"%PDF-":
        raise BadInputError("the file is named a PDF but is not one", code=DOCUMENT_UNSUPPORTED)
    return kind


def extract_text(data: bytes, kind: DocumentType) -> str:
    """The document's text, whitespace tidied. CPU-bound for a PDF: call it off the loop.

    Raises ``BadInputError``: not UTF-8 text (415), an unreadable PDF (422), no text (422).
    """
    if kind is DocumentType.PDF:
        text = _pdf_text(data)
    else:
        raw = _decode(data)
        if kind is DocumentType.HTML:
            text = _html_text(raw)
        elif kind is DocumentType.MARKDOWN:
            text = _markdown_text(raw)
        else:
            text = raw
    tidy = _tidy(text)
    if not tidy:
        raise BadInputError("the document has no text to index", code=DOCUMENT_EMPTY)
    return tidy


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInputError(
            "the document is not UTF-8 text; send " + _ACCEPTED, code=DOCUMENT_UNSUPPORTED
        ) from exc
    if "\x00" in text:
        raise BadInputError("the document is binary, not text", code=DOCUMENT_UNSUPPORTED)
    return text


def _pdf_text(data: bytes) -> str:
    # Imported here: only the processes that index documents load the PDF reader.
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise BadInputError(
                "the PDF is encrypted; send it without a password", code=DOCUMENT_UNREADABLE
            )
        return "\n\n".join(page.extract_text() or "" for page in reader.pages)
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        # pypdf raises several kinds on a damaged file; none of their words reach a client.
        log.info("unreadable PDF", extra={"error": type(exc).__name__})
        raise BadInputError("the PDF could not be read", code=DOCUMENT_UNREADABLE) from exc


_BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "td",
        "th",
        "tr",
        "ul",
    ]
)
_SKIPPED_TAGS = frozenset(("script", "style", "template", "noscript", "head"))


class _TextOfHtml(HTMLParser):
    """Collects the visible text, a line break at each block element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def _html_text(raw: str) -> str:
    parser = _TextOfHtml()
    parser.feed(raw)
    parser.close()
    return "".join(parser.parts)


_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
# A heading, quote or list marker at a line's start (blank lines stay: they end paragraphs).
_MD_LINE_MARK = re.compile(
    r"^[ \t]{0,3}(?:#{1,6}[ \t]+|>[ \t]?|[-*+][ \t]+|\d+[.)][ \t]+)", re.MULTILINE
)
_MD_EMPHASIS = re.compile(r"(\*\*|__|\*|_|`+)(?=\S)(.+?)(?<=\S)\1")
_MD_FENCE = re.compile(r"^[ \t]*(```|~~~).*$", re.MULTILINE)


def _markdown_text(raw: str) -> str:
    # Markup would only dilute the embeddings; the words stay, headings become lines.
    text = _MD_FENCE.sub("", raw)
    text = _MD_IMAGE.sub(r"\1", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_LINE_MARK.sub("", text)
    return _MD_EMPHASIS.sub(r"\2", text)


_SPACES = re.compile(r"[ \t\f\v\r\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def _tidy(text: str) -> str:
    # PostgreSQL text cannot hold NUL, which a PDF's text layer may.
    text = text.replace("\x00", "")
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
