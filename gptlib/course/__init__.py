"""The classroom around the GPT: what exists to teach it, not to run it.

Explorers (``attention_explorer``, ``sampling_explorer``), what a trained model learned (``probe``),
pictures (``figures``, ``diagrams``, ``drawing``, ``fonts``), notebook helpers (``notebook``), the
exercise checks (``exercises``), ``doctor`` and the classroom's commands (``commands``). Modules here
may import the GPT (``gptlib``'s top level); the GPT never imports them (``tests/test_layering.py``).
"""
