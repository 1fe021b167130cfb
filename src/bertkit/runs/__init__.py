"""The run drivers: one call per run a user starts (pretraining, distillation), wiring the
data pipeline, the model, an objective and the trainer, and leaving a model directory."""
