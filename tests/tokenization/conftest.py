"""Tokenizer tests use the shared real-text fixtures of tests/conftest.py (``minilm_dir``,
``real_lines``): the real uncased 30,522-entry vocabulary and ~3,600 real lines."""
