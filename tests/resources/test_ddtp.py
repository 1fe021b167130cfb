"""Tests for bertkit.resources.ddtp: Debian's translated descriptions as a parallel corpus.

Synthetic Translation indexes (plain files in apt's record format) check parsing, the
md5 join, the paragraph split, the hash split and the cache; one real test reads apt's files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from bertkit.data.readers import read_pairs
from bertkit.errors import ArtifactError, DataFormatError
from bertkit.resources.ddtp import build_ddtp, parse_translation, split_of

PREFIX = "deb.example.org_debian_dists_stable_main_i18n_Translation-"


def _md5(i: int) -> str:
    return hashlib.md5(str(i).encode()).hexdigest()


def _record(package: str, md5: str, lang: str, short: str, long: list[str]) -> str:
    body = "".join(f" {line}\n" for line in long)
    return f"Package: {package}\nDescription-md5: {md5}\nDescription-{lang}: {short}\n{body}"


def _lists(tmp_path: Path, n: int = 200) -> Path:
    """English for descriptions 0..n-1, German for the even ones plus one whose md5 has no
    English partner (an outdated translation)."""
    folder = tmp_path / "lists"
    folder.mkdir()
    en = [_record(f"pkg{i}", _md5(i), "en", f"tool number {i}",
                  [f"First paragraph {i}", "continues here.", ".", f"Second {i}."])
          for i in range(n)]
    de = [_record(f"pkg{i}", _md5(i), "de", f"Werkzeug Nummer {i}",
                  [f"Erster Absatz {i}", "geht weiter.", ".", f"Zweiter {i}."])
          for i in range(0, n, 2)]
    de.append(_record("old", _md5(-1), "de", "veraltet", ["nicht mehr aktuell"]))
    (folder / f"{PREFIX}en").write_text("\n".join(en), encoding="utf-8")
    (folder / f"{PREFIX}de").write_text("\n".join(de), encoding="utf-8")
    (folder / f"{PREFIX}en_GB").write_text(_record("x", _md5(0), "en_GB", "colour", []),
                                           encoding="utf-8")
    return folder


def test_parse_short_description_and_paragraphs():
    text = _record("0ad", "d943", "de", "Echtzeit-Strategiespiel  ",
                   ["0 A.D. ist ein", "freies Spiel.", ".", "Zweiter Absatz.", ".", "Dritter."])
    text += "\n" + _record("0ad-data", "d943", "de", "dupliziert", [])  # same md5: first wins
    found = parse_translation(text, "de")
    assert list(found) == ["d943"]
    d = found["d943"]
    assert (d.package, d.short) == ("0ad", "Echtzeit-Strategiespiel")
    assert d.paragraphs == ("0 A.D. ist ein freies Spiel.", "Zweiter Absatz.", "Dritter.")
    assert d.short_and_first_paragraph == "Echtzeit-Strategiespiel 0 A.D. ist ein freies Spiel."


def test_record_without_language_field_names_file_and_line():
    text = _record("a", "11", "de", "gut", []) + "\nPackage: b\nDescription-md5: 22\n"
    with pytest.raises(DataFormatError, match=r"idx:5: record has no 'Description-de'"):
        parse_translation(text, "de", "idx")


def test_split_by_hash_is_deterministic_and_uses_the_fractions():
    md5s = [_md5(i) for i in range(4000)]
    splits = [split_of(m, dev_fraction=0.1, test_fraction=0.2) for m in md5s]
    assert splits == [split_of(m, dev_fraction=0.1, test_fraction=0.2) for m in md5s]
    share = {s: splits.count(s) / len(splits) for s in ("train", "dev", "test")}
    assert abs(share["test"] - 0.2) < 0.03 and abs(share["dev"] - 0.1) < 0.03


def test_build_joins_on_md5_splits_disjointly_and_caches(tmp_path):
    lists = _lists(tmp_path)
    out = tmp_path / "out"
    report = build_ddtp(out, languages=["de"], lists_dir=lists, update=False,
                        dev_fraction=0.2, test_fraction=0.2)
    assert not report.cached
    counts = report.counts["de-en"]
    assert sum(counts.values()) == 100  # the even descriptions; the outdated one has no partner
    assert all(counts[s] > 0 for s in ("train", "dev", "test"))
    md5s = {}
    for split in ("train", "dev", "test"):
        path = out / "de-en" / f"{split}.jsonl"
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        md5s[split] = {r["md5"] for r in rows}
        for r in rows:
            i = int(r["package"].removeprefix("pkg"))
            assert r["source"] == f"Werkzeug Nummer {i}" and r["target"] == f"tool number {i}"
            assert r["target_paragraph"] == f"tool number {i} First paragraph {i} continues here."
            assert split_of(r["md5"], dev_fraction=0.2, test_fraction=0.2) == split
        pairs = read_pairs(path, source_field="source_paragraph",
                           target_field="target_paragraph")
        assert len(pairs) == counts[split]
    assert not (md5s["train"] & md5s["test"] or md5s["train"] & md5s["dev"]
                or md5s["dev"] & md5s["test"])
    again = build_ddtp(out, languages=["de"], lists_dir=lists, update=False,
                       dev_fraction=0.2, test_fraction=0.2)
    assert again.cached and again.counts == report.counts
    (out / "de-en" / "test.jsonl").write_text("tampered\n", encoding="utf-8")
    rebuilt = build_ddtp(out, languages=["de"], lists_dir=lists, update=False,
                         dev_fraction=0.2, test_fraction=0.2)
    assert not rebuilt.cached and rebuilt.counts == report.counts


def test_missing_language_index_says_how_to_fetch_it(tmp_path):
    with pytest.raises(ArtifactError, match=r"no Debian Translation index for \['fr'\].*"
                                            "Acquire::Languages=en,fr"):
        build_ddtp(tmp_path / "out", languages=["fr"], lists_dir=_lists(tmp_path),
                   update=False)


@pytest.mark.needs_artifacts
def test_real_ddtp_pairs_from_apt(tmp_path):
    try:
        report = build_ddtp(tmp_path / "ddtp", languages=["de", "es"])
    except ArtifactError as err:
        pytest.skip(f"Debian's DDTP indexes unavailable: {err}")
    totals = {pair: sum(c.values()) for pair, c in report.counts.items()}
    # bookworm: 13,163 German and 2,000 Spanish descriptions translate the current English
    assert totals["de-en"] > 10_000 and totals["es-en"] > 1_500
    test = read_pairs(tmp_path / "ddtp" / "de-en" / "test.jsonl")
    assert 0.03 < len(test) / totals["de-en"] < 0.07
    assert sum(p.source != p.target for p in test) > 0.9 * len(test)


def test_cli_prints_counts_per_split(tmp_path, capsys):
    from bertkit.cli import main

    out = tmp_path / "out"
    args = ["data", "ddtp", "--out", str(out), "--languages", "de", "--lists-dir",
            str(_lists(tmp_path)), "--test-fraction", "0.3"]
    assert main(args) == 0
    first = capsys.readouterr().out.splitlines()[0].split("\t")
    assert first[:2] == ["de-en", "100 pairs"]
    counts = {part.split()[0]: int(part.split()[1]) for part in first[2:5]}
    assert sum(counts.values()) == 100 and counts["test"] > 10
    assert main(args) == 0 and capsys.readouterr().out.endswith("(cached)\n")
