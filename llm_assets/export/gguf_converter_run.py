"""Runs llama.cpp's `convert_hf_to_gguf.py` in its own process, with two additions.

Run as `python -m llm_assets.export.gguf_converter_run CONVERTER EXTRA_KV_JSON [--default-pre]
-- <converter arguments>`. The converter imports its own `gguf-py` (newer than the `gguf` package
transformers reads GGUF files with), so it never runs in the Dagster process.

- Every string in EXTRA_KV_JSON (a JSON object) is written into the file's metadata (the system
  prompt, under `llm_assets.system_prompt`).
- `--default-pre`: a byte-level BPE tokenizer llama.cpp has no hash for (the tiny test model's,
  trained here) gets llama.cpp's `default` pre-tokenizer instead of failing. Evaluation hands
  llama.cpp token ids from the training tokenizer, so it is unaffected; llama.cpp's own
  tokenization of served text may split such a vocabulary differently. Real models have a
  pre-tokenizer llama.cpp knows (SmolLM2's is `smollm`) and never take this path.
"""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path


def _patch_converter(extra_kv: dict[str, str], default_pre: bool) -> None:
    from conversion.base import TextModel  # type: ignore[import-not-found]

    original_metadata = TextModel.prepare_metadata

    def prepare_metadata(self, vocab_only):  # type: ignore[no-untyped-def]
        original_metadata(self, vocab_only)
        for key, value in extra_kv.items():
            self.gguf_writer.add_string(key, value)

    TextModel.prepare_metadata = prepare_metadata
    if default_pre:
        original_pre = TextModel.get_vocab_base_pre

        def get_vocab_base_pre(self, tokenizer):  # type: ignore[no-untyped-def]
            try:
                return original_pre(self, tokenizer)
            except NotImplementedError:
                return "default"

        TextModel.get_vocab_base_pre = get_vocab_base_pre


def main(argv: list[str]) -> None:
    separator = argv.index("--")
    ours, converter_args = argv[:separator], argv[separator + 1 :]
    converter = Path(ours[0])
    extra_kv = json.loads(Path(ours[1]).read_text(encoding="utf-8"))
    # The converter's own gguf-py and `conversion` package come first on the path.
    sys.path[:0] = [str(converter.parent / "gguf-py"), str(converter.parent)]
    _patch_converter(extra_kv, "--default-pre" in ours[2:])
    sys.argv = [str(converter), *converter_args]
    runpy.run_path(str(converter), run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
