"""The task registry is the one place tasks are declared: every consumer's table derives from
it, and a wrong name fails with the valid names."""

from __future__ import annotations

import dataclasses

import pytest

from bertkit.cli import build_parser
from bertkit.errors import UsageError
from bertkit.model.pretrained import MODEL_CLASSES
from bertkit.tasks.registry import (
    FINETUNED,
    HEADS,
    ROUTES,
    TASKS,
    finetuned_spec,
    route_spec,
    spec_of_class,
    task_spec,
)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_outputs_are_fields_of_the_output_class(name: str) -> None:
    spec = TASKS[name]
    fields = {f.name for f in dataclasses.fields(spec.output_class)}
    assert set(spec.outputs) <= fields
    assert spec.per_token <= set(spec.outputs)
    assert spec_of_class(spec.model_class) is spec
    assert MODEL_CLASSES[spec.model_class.__name__] is spec.model_class


def test_lookup_by_short_and_export_name() -> None:
    assert task_spec("classify") is task_spec("sequence-classification") is HEADS[
        "sequence-classification"]
    assert route_spec("embeddings").name == "encoder"
    with pytest.raises(UsageError, match=r"unknown task 'clasify'.*classify"):
        task_spec("clasify")
    with pytest.raises(UsageError, match=r"'encoder'; expected one of.*classify"):
        finetuned_spec("encoder")
    with pytest.raises(UsageError, match="expected auto or one of"):
        route_spec("rerank")


@pytest.mark.parametrize("name", FINETUNED)
def test_every_finetuned_task_is_served_and_on_the_command_line(name: str) -> None:
    spec = TASKS[name]
    assert spec.predict is not None and spec.serve is not None and spec.route in ROUTES
    parser = build_parser()
    args = parser.parse_args(["finetune", name, "--model", "m", "--train", "t", "--eval", "e",
                              "--out", "o"])
    assert args.max_length == spec.max_length
    assert parser.parse_args(["predict", name, "--model", "m", "x"]).task == name
