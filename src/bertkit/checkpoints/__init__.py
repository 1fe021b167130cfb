"""Checkpoints on disk: the Hugging Face format (config.json + model.safetensors)."""
