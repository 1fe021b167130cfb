"""The demo's translation step when apt's DDTP corpus cannot be had: the step records why, the
report says the section was skipped, and nothing else is attempted (the full step runs in
test_demo.py's tiny-budget demo)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bertkit.demo import translation
from bertkit.demo.budget import Clock
from bertkit.demo.run import DemoRun, DemoSettings
from bertkit.errors import ArtifactError


def test_without_apt_the_section_is_skipped_with_the_reason(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reason = "apt is not available on this system (no apt-get): the DDTP corpus needs it"

    def no_apt(*args: object, **kwargs: object) -> None:
        raise ArtifactError(reason)

    def must_not_train(*args: object, **kwargs: object) -> None:
        raise AssertionError("trained without a corpus")

    monkeypatch.setattr(translation, "build_ddtp", no_apt)
    monkeypatch.setattr(translation, "train_seq2seq", must_not_train)
    run = DemoRun(DemoSettings(output_dir=tmp_path), tmp_path, Clock(1), tmp_path,
                  summary={"steps": []})
    note = translation.translation_step(run)
    assert note == f"translation section skipped: {reason}"
    assert run.summary["translation"] == {"skipped": reason}
    page = translation.translation_html(run.summary["translation"], image="")
    assert page == f"<p>Skipped: {reason}</p>"


def test_the_section_says_plainly_when_the_model_does_not_beat_copying() -> None:
    section = translation.TranslationSection(
        steps=3, train_seconds=2.0, train_pairs=256, test_pairs=16, bleu=0.5, chrf=6.0,
        bleu_signature="nrefs:1|case:lc", copy_bleu=9.0, copy_chrf=37.0,
        examples=[{"source": "Bibliothek <b>", "reference": "library", "hypothesis": "is"}],
        alignment_text="Bibliothek → is")
    page = translation.translation_html(section.to_dict(), image="<img>")
    assert "does <strong>not</strong> beat the copy baseline" in page
    assert "BLEU 0.50" in page and "BLEU 9.00" in page and "Bibliothek &lt;b&gt;" in page
    assert "alignment.html" not in page and page.endswith("<img>")
    better = translation.translation_html({**section.to_dict(), "bleu": 12.0,
                                           "beats_copy": True}, image="")
    assert "beats the copy baseline" in better
