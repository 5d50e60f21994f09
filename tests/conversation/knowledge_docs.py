"""A test chatbot's knowledge: three documents (text, Markdown, HTML) whose facts exist
nowhere else, questions only they answer, a PDF built by hand, and a rival document for
another chatbot that states different facts (it must never be retrieved for the first)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from parley_common.knowledge import KnowledgeIndexer


@dataclass(frozen=True)
class Doc:
    filename: str
    media_type: str
    data: bytes


@dataclass(frozen=True)
class Question:
    text: str
    filename: str  # the document whose passage answers it
    fact: str  # words of that passage that answer it


_FILLER = (
    "The quarterly newsletter collects updates from every department. Readers are encouraged"
    " to send suggestions for future issues, and the editorial team reviews each one before"
    " the next deadline. Archived issues remain available on the shared drive for a year."
)

HANDBOOK_TXT = f"""Brindlewood Bakery staff handbook

Opening hours. The Brindlewood Bakery on Quillon Street opens at 6:40 in the morning and
closes at 3:15 in the afternoon, every day except Tuesday, when it stays closed for deep
cleaning.

{_FILLER}

Uniforms. Every baker wears a teal apron with the bakery's heron logo; aprons are washed on
site and collected from the laundry cupboard behind the walk-in fridge.

{_FILLER}

Sourdough. The house sourdough starter is called Gideon and is fed with rye flour twice a day,
at 5 in the morning and at 5 in the evening.
""".encode()

VEHICLES_MD = f"""# Delivery vans

## Fuel

Delivery vans must be returned with at least **three quarters** of a tank. The fuel card PIN
is kept by the shift lead, never in the van.

## Parking

{_FILLER}

The underground garage on Harrow Lane opens with the access code **7316-Q**; the barrier
closes again after forty seconds.

- Vans park in bays 12 to 18.
- Bay 19 is reserved for the electric cargo bike.
""".encode()

TRAVEL_HTML = f"""<!doctype html>
<html><head><title>Travel policy</title><style>body {{ color: red; }}</style>
<script>var secret = "not text";</script></head>
<body>
<h1>Travel policy</h1>
<p>Staff travelling to the Lisbon flour fair receive a daily meal allowance of
<b>64 euros</b>, paid in advance by the finance office.</p>
<p>{_FILLER}</p>
<ul><li>Train travel is preferred for trips under five hours.</li>
<li>Hotel bookings go through the travel desk at extension 2209.</li></ul>
</body></html>
""".encode()

RIVAL_TXT = b"""Brindlewood Bakery notes of another team

The Brindlewood Bakery on Quillon Street opens at 11 in the morning and closes at midnight.
The house sourdough starter is called Bartholomew and is fed with spelt flour.
The underground garage on Harrow Lane opens with the access code 0000-Z.
"""

DOCUMENTS = (
    Doc("handbook.txt", "text/plain", HANDBOOK_TXT),
    Doc("vehicles.md", "text/markdown", VEHICLES_MD),
    Doc("travel.html", "text/html", TRAVEL_HTML),
)

QUESTIONS = (
    Question("What time does the bakery open in the morning?", "handbook.txt", "6:40"),
    Question("What is the name of the sourdough starter?", "handbook.txt", "Gideon"),
    Question("What is the access code of the garage?", "vehicles.md", "7316-Q"),
    Question("How much is the daily meal allowance in Lisbon?", "travel.html", "64 euros"),
)


async def index_chatbots(indexer: KnowledgeIndexer) -> tuple[str, str]:
    """Two new chatbots indexed straight into the store: alice's with the three documents,
    bob's with the rival notes. Their ids."""
    ours, theirs = f"kb-{uuid.uuid4()}", f"kb-{uuid.uuid4()}"
    for doc in DOCUMENTS:
        await indexer.upload(
            user_id="alice",
            chatbot_id=ours,
            filename=doc.filename,
            media_type=doc.media_type,
            data=doc.data,
        )
    await indexer.upload(
        user_id="bob", chatbot_id=theirs, filename="rival.txt", media_type=None, data=RIVAL_TXT
    )
    return ours, theirs


def tiny_pdf(text: str) -> bytes:
    """A one-page PDF showing ``text`` in Helvetica (a valid file with a correct xref)."""
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    stream = f"BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
