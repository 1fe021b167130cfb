"""The demo's "What the layers know" hook: its contract, its cache and its time budget."""

from __future__ import annotations

from bertkit.demo.layers import CACHE_NAME, layer_probes
from bertkit.inference.attention_maps import viz_available


def test_layer_probes_section_is_cached_and_keeps_the_budget(probe_model_dir, brown_dir,
                                                              tmp_path):
    models = {"tiny": probe_model_dir, "tiny again": probe_model_dir}
    section = layer_probes(models, tmp_path, brown=brown_dir, max_train=20, max_test=10,
                           budget_seconds=0.0, random_baseline=False)
    assert not section["cached"] and section["task"] == "pos-brown"
    assert [c["name"] for c in section["curves"]] == ["tiny"]  # budget spent after the first
    assert any("tiny again: not probed" in note for note in section["notes"])
    curve = section["curves"][0]
    assert curve["layers"] == [0, 1, 2] and curve["kind"] == "trained"
    for acc, control, sel in zip(curve["accuracy"], curve["control"], curve["selectivity"],
                                 strict=True):
        assert abs(acc - control - sel) < 1e-9
    assert set(section["baselines"]) == {"majority", "per-word"}
    assert (section["figure"] == "layers.png") == viz_available()
    assert (tmp_path / CACHE_NAME).exists()
    again = layer_probes(models, tmp_path, brown=brown_dir, max_train=20, max_test=10,
                         budget_seconds=0.0, random_baseline=False)
    assert again["cached"] and again["curves"] == section["curves"]
    other = layer_probes(models, tmp_path, brown=brown_dir, max_train=15, max_test=10,
                         budget_seconds=0.0, random_baseline=False)
    assert not other["cached"]  # an option changed: measured again


def test_a_models_curves_are_cached_across_output_folders(probe_model_dir, brown_dir,
                                                          tmp_path):
    """A demo rerun starts from an empty output folder: a model whose files did not change
    (MiniLM) comes from the cache and costs no budget, so the next model gets measured."""
    models = {"tiny": probe_model_dir, "tiny again": probe_model_dir}
    options = dict(brown=brown_dir, max_train=20, max_test=10, budget_seconds=0.0,
                   random_baseline=False, cache_dir=tmp_path / "cache")
    first = layer_probes(models, tmp_path / "run1", **options)
    assert [c["name"] for c in first["curves"]] == ["tiny"] and first["cached_models"] == []
    second = layer_probes(models, tmp_path / "run2", **options)
    assert second["cached_models"] == ["tiny"]
    assert [c["name"] for c in second["curves"]] == ["tiny", "tiny again"]
    assert second["curves"][0] == first["curves"][0]
    assert any("tiny: curves measured by an earlier demo run" in n for n in second["notes"])
    third = layer_probes(models, tmp_path / "run3", **options)
    assert third["cached_models"] == ["tiny", "tiny again"]
    assert third["curves"] == second["curves"]
