"""Attention maps: the probabilities, only requested layers on the explicit path, the PNG
figures, and the HTML view (checked in a real headless browser when chromium is installed)."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bertkit import BertModel, Tokenizer, UsageError
from bertkit.cli import main
from bertkit.inference import attention_maps as module
from bertkit.inference.attention_maps import (
    attention_html,
    attention_maps,
    plot_attention,
    plot_heads,
    write_attention_html,
)

TEXT = "The cat sat on the mat because it was tired"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_maps_are_the_explicit_attention_probabilities(tiny_encoder: BertModel,
                                                       tiny_tokenizer: Tokenizer) -> None:
    maps = attention_maps(tiny_encoder, tiny_tokenizer, TEXT, layers=[0, -1])
    assert maps.tokens == ["[CLS]", "the", "cat", "sat", "on", "the", "mat", "because", "it",
                           "was", "tired", "[SEP]"]
    assert sorted(maps.probabilities) == [0, 2]
    ids = torch.tensor([tiny_tokenizer.encode(TEXT)])
    with torch.inference_mode():
        expected = tiny_encoder(ids, output_attentions=True).attentions
    for layer in (0, 2):
        probs = maps.probabilities[layer]
        assert probs.shape == (4, 12, 12)
        torch.testing.assert_close(probs.sum(dim=-1), torch.ones(4, 12))
        torch.testing.assert_close(probs, expected[layer][0])
    torch.testing.assert_close(maps.head(-1, 3), expected[2][0, 3])


def test_only_requested_layers_take_the_explicit_path(tiny_encoder: BertModel,
                                                      tiny_tokenizer: Tokenizer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import bertkit.model.bert as bert

    calls = []
    fast = bert.F.scaled_dot_product_attention

    def counting(*args, **kwargs):
        calls.append(1)
        return fast(*args, **kwargs)

    monkeypatch.setattr(bert.F, "scaled_dot_product_attention", counting)
    maps = attention_maps(tiny_encoder, tiny_tokenizer, TEXT, layers=[1])
    assert sorted(maps.probabilities) == [1]
    assert len(calls) == 2, "the two other layers stay on scaled_dot_product_attention"


def test_layer_and_head_errors(tiny_encoder: BertModel, tiny_tokenizer: Tokenizer) -> None:
    with pytest.raises(UsageError, match=r"layer 3 is out of range for a model with 3 layers"):
        attention_maps(tiny_encoder, tiny_tokenizer, TEXT, layers=[3])
    maps = attention_maps(tiny_encoder, tiny_tokenizer, TEXT, layers=[1])
    with pytest.raises(UsageError, match=r"layer 0 was not computed; these maps hold layers \[1\]"):
        maps.head(0, 0)
    with pytest.raises(UsageError, match=r"head 4 is out of range: the model has 4 heads"):
        maps.head(1, 4)


def test_png_heatmap_and_head_grid(tiny_encoder: BertModel, tiny_tokenizer: Tokenizer,
                                   tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    maps = attention_maps(tiny_encoder, tiny_tokenizer, TEXT)
    figure = plot_attention(maps, 1, 2, tmp_path / "map.png")
    (axes, bar) = figure.axes
    assert [t.get_text() for t in axes.get_xticklabels()] == maps.tokens
    assert [t.get_text() for t in axes.get_yticklabels()] == maps.tokens
    assert axes.get_title().startswith("layer 1, head 2")
    assert bar.get_ylabel() == "attention probability"
    assert (tmp_path / "map.png").read_bytes().startswith(PNG_SIGNATURE)
    grid = plot_heads(maps, -1, tmp_path / "grid.png")
    titles = [a.get_title() for a in grid.axes if a.get_visible() and a.get_title()]
    assert titles == [f"head {h}" for h in range(4)]
    assert (tmp_path / "grid.png").read_bytes().startswith(PNG_SIGNATURE)


def test_missing_matplotlib_says_how_to_install_it(tiny_encoder: BertModel,
                                                   tiny_tokenizer: Tokenizer,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    maps = attention_maps(tiny_encoder, tiny_tokenizer, TEXT, layers=[0])
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails
    with pytest.raises(UsageError, match=r"pip install 'bertkit\[viz\]'"):
        plot_attention(maps, 0, 0, tmp_path / "map.png")
    assert not (tmp_path / "map.png").exists()
    write_attention_html(maps, tmp_path / "view.html")  # the HTML view needs no matplotlib
    assert (tmp_path / "view.html").is_file()


def _embedded_data(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="attention-data">(.*?)</script>',
                      page, re.S)
    assert match, "the data is embedded in the page"
    return json.loads(match.group(1))


def test_html_is_self_contained_and_escapes_text(tiny_encoder: BertModel,
                                                 tiny_tokenizer: Tokenizer) -> None:
    text = "the cat </script><script>alert(1)</script> sat"
    maps = attention_maps(tiny_encoder, tiny_tokenizer, text)
    page = attention_html(maps, title="<b>title</b>", layer=-1, head=3)
    assert "<b>title</b>" not in page and "&lt;b&gt;title&lt;/b&gt;" in page
    assert page.count("</script>") == 2, "text cannot close the data or code element"
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "nothing is fetched"
    assert "http://" not in page and "https://" not in page
    data = _embedded_data(page)
    assert data["text"] == text and data["tokens"] == maps.tokens
    assert data["initial"] == {"layer": 2, "head": 3}
    assert sorted(data["layers"]) == ["0", "1", "2"]
    head = torch.tensor(data["layers"]["1"][2])
    torch.testing.assert_close(head, maps.head(1, 2), atol=5e-5, rtol=0)


CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser",
                                                  "google-chrome") if shutil.which(name)), None)


def _headless(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--enable-logging=stderr", "--v=0", *extra, url],
        capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install "
                                             "chromium); CI installs it")
def test_html_view_loads_in_headless_chromium_without_console_errors(
        tiny_encoder: BertModel, tiny_tokenizer: Tokenizer, tmp_path: Path) -> None:
    maps = attention_maps(tiny_encoder, tiny_tokenizer, TEXT)
    page = tmp_path / "view.html"
    write_attention_html(maps, page, layer=1, head=2)
    # The page itself never logs, so any console line (an uncaught error included) is a fault.
    run = _headless(page.as_uri(), "--dump-dom")
    assert run.returncode == 0, run.stderr[-2000:]
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, "\n".join(console)
    dom = run.stdout
    assert 'data-view="1/2"' in dom, "the script ran to the end and shows layer 1, head 2"
    assert dom.count('class="cell"') == len(maps.tokens) ** 2
    assert len(re.findall(r'class="thumb( active)?"', dom)) == maps.num_heads
    assert dom.count('class="thumb active"') == 1
    # A view chosen through the URL fragment.
    run = _headless(page.as_uri() + "#layer=2&head=0", "--dump-dom")
    assert 'data-view="2/0"' in run.stdout
    assert not [line for line in run.stderr.splitlines() if ":CONSOLE" in line]


def test_cli_attention(encoder_dir: Path, tmp_path: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    png, grid, page = tmp_path / "map.png", tmp_path / "grid.png", tmp_path / "view.html"
    assert main(["attention", "--model", str(encoder_dir), TEXT, "--layer", "1", "--head", "3",
                 "--out", str(png), "--html", str(page)]) == 0
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    assert _embedded_data(page.read_text(encoding="utf-8"))["initial"] == {"layer": 1,
                                                                            "head": 3}
    assert main(["attention", "--model", str(encoder_dir), TEXT, "--layer", "-1", "--all",
                 "--out", str(grid)]) == 0
    assert grid.read_bytes().startswith(PNG_SIGNATURE)
    assert main(["attention", "--model", str(encoder_dir), TEXT, "--layer", "7",
                 "--out", str(png)]) == 2
    assert "layer 7 is out of range" in capsys.readouterr().err
    assert main(["attention", "--model", str(encoder_dir), TEXT]) == 2
    assert "nothing to write" in capsys.readouterr().err


@pytest.mark.needs_artifacts
def test_minilm_maps_equal_the_reference(minilm_dir: Path) -> None:
    transformers = pytest.importorskip("transformers")
    from bertkit.inference.engine import Engine

    engine = Engine.from_pretrained(minilm_dir, device="cpu")
    maps = attention_maps(engine, None, TEXT, layers=[0, 3, 5])
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_dir)
    model = transformers.AutoModel.from_pretrained(minilm_dir, attn_implementation="eager").eval()
    with torch.inference_mode():
        reference = model(**tokenizer(TEXT, return_tensors="pt"), output_attentions=True).attentions
    for layer in (0, 3, 5):
        torch.testing.assert_close(maps.probabilities[layer], reference[layer][0],
                                   atol=1e-5, rtol=1e-4)


def test_module_imports_matplotlib_lazily() -> None:
    source = Path(module.__file__).read_text(encoding="utf-8")
    assert not re.search(r"^(import|from) matplotlib", source, re.M)


@pytest.fixture(scope="module")
def pruned_encoder(tiny_encoder: BertModel) -> BertModel:
    """``tiny_encoder`` without heads 0 and 2 of layer 1 (of 4)."""
    model = copy.deepcopy(tiny_encoder)
    model.prune_heads({1: [0, 2]})
    return model


def test_a_pruned_layer_keeps_the_unpruned_head_numbers(
        pruned_encoder: BertModel, tiny_encoder: BertModel, tiny_tokenizer: Tokenizer,
        ) -> None:
    full = attention_maps(tiny_encoder, tiny_tokenizer, TEXT, layers=[0, 1])
    maps = attention_maps(pruned_encoder, tiny_tokenizer, TEXT, layers=[0, 1])
    assert maps.probabilities[1].shape[0] == 2 and maps.num_heads == 4
    assert maps.head_ids(0) == [0, 1, 2, 3] and maps.head_ids(1) == [1, 3]
    # Layer 1's input is untouched by its own pruning: the heads it keeps attend as before.
    for head in (1, 3):
        torch.testing.assert_close(maps.head(1, head), full.head(1, head))
    torch.testing.assert_close(maps.head(1, -1), full.head(1, 3))
    torch.testing.assert_close(maps.head(0, 2), full.head(0, 2))
    with pytest.raises(UsageError, match=r"head 2 of layer 1 was pruned; the layer keeps "
                                         r"heads \[1, 3\]"):
        maps.head(1, 2)
    data = _embedded_data(attention_html(maps, layer=1))
    assert data["initial"] == {"layer": 1, "head": 1}, "opens on a head that is left"
    assert data["heads"] == {"0": [0, 1, 2, 3], "1": [1, 3]}
    torch.testing.assert_close(torch.tensor(data["layers"]["1"][1]), full.head(1, 3),
                               atol=5e-5, rtol=0)
    if module.viz_available():
        grid = plot_heads(maps, 1)
        assert [a.get_title() for a in grid.axes if a.get_visible() and a.get_title()] == \
            ["head 1", "head 3"]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install "
                                             "chromium); CI installs it")
def test_html_view_of_a_pruned_layer_offers_its_remaining_heads(
        pruned_encoder: BertModel, tiny_tokenizer: Tokenizer, tmp_path: Path) -> None:
    page = tmp_path / "view.html"
    write_attention_html(attention_maps(pruned_encoder, tiny_tokenizer, TEXT), page, layer=1,
                         head=3)
    run = _headless(page.as_uri(), "--dump-dom")
    assert not [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    assert 'data-view="1/3"' in run.stdout
    assert len(re.findall(r'class="thumb( active)?"', run.stdout)) == 2
    assert re.findall(r'<option value="(\d+)"', run.stdout.split('id="head"')[1]
                      .split("</select>")[0]) == ["1", "3"]
