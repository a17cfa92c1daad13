"""The promotion stage: the adapter registered as the `challenger` version of the use case's
model, and the gate that moves alias `champion` to it. The registry calls and the gate itself
live in `llm_assets.evaluation.registry` and `llm_assets.evaluation.promotion`, which
evaluation (finding the champion to compare against) reads too."""
