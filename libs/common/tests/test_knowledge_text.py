"""Documents to text and text to passages: each format's extraction, the refusals (with the
codes the gateway turns into 415/413/422), and passages that keep sentences whole."""

from __future__ import annotations

import pytest

from parley_common.errors import BadInputError
from parley_common.knowledge.chunking import chunk_text
from parley_common.knowledge.extract import (
    DOCUMENT_EMPTY,
    DOCUMENT_TOO_LARGE,
    DOCUMENT_UNREADABLE,
    DOCUMENT_UNSUPPORTED,
    DocumentType,
    check_size,
    clean_filename,
    detect_type,
    extract_text,
)
from tests.conversation.knowledge_docs import tiny_pdf


def _code(exc: pytest.ExceptionInfo[BadInputError]) -> str:
    return exc.value.code


@pytest.mark.parametrize(
    ("filename", "media_type", "expected"),
    [
        ("notes.txt", None, DocumentType.TEXT),
        ("README.MD", "application/octet-stream", DocumentType.MARKDOWN),
        ("page.htm", None, DocumentType.HTML),
        (None, "text/html; charset=utf-8", DocumentType.HTML),
        ("upload", "text/plain", DocumentType.TEXT),
        ("report.pdf", None, DocumentType.PDF),
    ],
)
def test_the_type_comes_from_the_name_then_the_media_type(
    filename: str | None, media_type: str | None, expected: DocumentType
) -> None:
    data = tiny_pdf("x") if expected is DocumentType.PDF else b"text"
    assert detect_type(filename, media_type, data) is expected


@pytest.mark.parametrize(
    ("filename", "media_type", "data"),
    [
        ("photo.png", "image/png", b"\x89PNG\r\n"),
        ("sheet.xlsx", None, b"PK\x03\x04"),
        (None, None, b"hello"),
        ("fake.pdf", "application/pdf", b"this is not a pdf"),
    ],
)
def test_other_files_are_unsupported(
    filename: str | None, media_type: str | None, data: bytes
) -> None:
    with pytest.raises(BadInputError) as exc:
        detect_type(filename, media_type, data)
    assert _code(exc) == DOCUMENT_UNSUPPORTED


def test_sizes_over_the_limit_or_zero_are_refused() -> None:
    check_size(100, 100)
    with pytest.raises(BadInputError) as exc:
        check_size(101, 100)
    assert _code(exc) == DOCUMENT_TOO_LARGE
    with pytest.raises(BadInputError) as exc:
        check_size(0, 100)
    assert _code(exc) == DOCUMENT_EMPTY


def test_html_keeps_the_visible_text_a_block_a_paragraph() -> None:
    html = (
        b"<html><head><title>T</title><style>p {color: red}</style></head><body>"
        b"<script>var hidden = 1;</script><h1>Menu</h1><p>Soup &amp; bread</p>"
        b"<ul><li>Tea</li><li>Coffee</li></ul></body></html>"
    )
    assert extract_text(html, DocumentType.HTML) == "Menu\n\nSoup & bread\n\nTea\n\nCoffee"


def test_markdown_loses_its_markup_not_its_words() -> None:
    md = (
        b"# Title\n\nSome **bold** and _italic_ words with a [link](http://example.com)"
        b" and `code`.\n\n- first item\n- second item\n\n```python\nprint(1)\n```\n"
    )
    assert extract_text(md, DocumentType.MARKDOWN) == (
        "Title\n\nSome bold and italic words with a link and code.\n\n"
        "first item\nsecond item\n\nprint(1)"
    )


def test_text_is_utf8_with_its_whitespace_tidied() -> None:
    data = "\ufeffCafé  au\tlait\r\n\r\n\r\n\r\nNext   paragraph  ".encode()
    assert extract_text(data, DocumentType.TEXT) == "Café au lait\n\nNext paragraph"


def test_a_pdf_gives_its_page_text() -> None:
    text = extract_text(tiny_pdf("The retreat is in Tromso (in September)."), DocumentType.PDF)
    assert text == "The retreat is in Tromso (in September)."


@pytest.mark.parametrize(
    ("data", "kind", "code"),
    [
        (b"   \n\n\t ", DocumentType.TEXT, DOCUMENT_EMPTY),
        (b"<html><script>only code</script></html>", DocumentType.HTML, DOCUMENT_EMPTY),
        ("caf\u00e9".encode("latin-1"), DocumentType.TEXT, DOCUMENT_UNSUPPORTED),
        (b"text\x00with a nul", DocumentType.TEXT, DOCUMENT_UNSUPPORTED),
        (b"%PDF-1.4\nnot really a pdf at all", DocumentType.PDF, DOCUMENT_UNREADABLE),
    ],
)
def test_unusable_content_is_refused_with_its_reason(
    data: bytes, kind: DocumentType, code: str
) -> None:
    with pytest.raises(BadInputError) as exc:
        extract_text(data, kind)
    assert _code(exc) == code


def test_passages_respect_the_word_limit_and_keep_every_word_in_order() -> None:
    sentences = [f"Sentence number {i} says something about topic {i}." for i in range(60)]
    text = " ".join(sentences[:25]) + "\n\n" + " ".join(sentences[25:])
    chunks = chunk_text(text, max_words=40, overlap_words=10)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert all(len(c.text.split()) <= 40 for c in chunks)
    # Every sentence is whole in some passage, in document order.
    found = [next(i for i, c in enumerate(chunks) if s in c.text) for s in sentences]
    assert found == sorted(found)
    # The paragraph break ends a passage: sentence 25 starts one.
    assert any(c.text.startswith(sentences[25]) for c in chunks)


def test_a_short_boundary_sentence_is_shared_by_both_passages() -> None:
    text = "One two three four five. Six seven. Eight nine ten eleven twelve."
    chunks = chunk_text(text, max_words=8, overlap_words=3)
    assert [c.text for c in chunks] == [
        "One two three four five. Six seven.",
        "Six seven. Eight nine ten eleven twelve.",
    ]


def test_a_sentence_longer_than_a_passage_is_cut() -> None:
    words = " ".join(f"w{i}" for i in range(25))
    chunks = chunk_text(words, max_words=10, overlap_words=2)
    assert [len(c.text.split()) for c in chunks] == [10, 10, 5]
    assert " ".join(c.text for c in chunks) == words


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("notes.txt", "notes.txt"),
        ("C:\\Users\\me\\My notes.md", "My notes.md"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("bad\x00name\n.txt", "badname.txt"),
        (None, "document"),
        ("x" * 300 + ".txt", "x" * 255),
    ],
)
def test_file_names_are_stored_plain(sent: str | None, stored: str) -> None:
    assert clean_filename(sent) == stored
