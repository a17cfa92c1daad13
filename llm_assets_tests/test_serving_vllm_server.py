"""serving.engine: vllm as vLLM's own OpenAI server: the command line the gateway starts and the
requests it sends. vLLM needs a CUDA GPU, so the server itself is not run here."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from llm_assets.evaluation.generation import ModelUnderTest
from llm_assets.serving.engine import EngineUnavailable, Prompt
from llm_assets.serving.protocol import Sampling
from llm_assets.serving.vllm_server import VllmServerEngine, vllm_command


def adapter_folder(tmp_path: Path, name: str, rank: int) -> str:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"r": rank, "peft_type": "LORA"}))
    return str(folder)


def option(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def test_a_lora_adapter_is_served_on_its_base_behind_a_key_on_loopback(tmp_path: Path) -> None:
    adapter = adapter_folder(tmp_path, "adapter", rank=12)
    command = vllm_command(ModelUnderTest("tuned", "/models/base", adapter, "lora"), 8123, "k3y")
    assert command[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    assert option(command, "--model") == "/models/base"
    assert option(command, "--tokenizer") == adapter  # the training tokenizer decodes
    assert (option(command, "--host"), option(command, "--port")) == ("127.0.0.1", "8123")
    assert option(command, "--api-key") == "k3y"
    assert "--enable-lora" in command
    assert option(command, "--lora-modules") == f"served={adapter}"
    assert option(command, "--max-lora-rank") == "16"  # rounded up to a rank vLLM compiles


def test_champion_and_challenger_share_one_base(tmp_path: Path) -> None:
    champion = adapter_folder(tmp_path, "champion", rank=16)
    challenger = adapter_folder(tmp_path, "challenger", rank=32)
    model = ModelUnderTest("champion", "/models/base", champion, "qlora")
    command = vllm_command(
        model, 8000, "k", adapters={"champion": champion, "challenger": challenger}
    )
    modules = command[command.index("--lora-modules") + 1 :]
    assert modules == [f"champion={champion}", f"challenger={challenger}"]
    assert (option(command, "--max-lora-rank"), option(command, "--max-loras")) == ("32", "2")


def test_a_full_fine_tune_is_the_model_and_prompt_tuning_is_refused(tmp_path: Path) -> None:
    full = vllm_command(ModelUnderTest("tuned", "/models/base", "/runs/full", "full"), 1, "k")
    assert option(full, "--model") == "/runs/full" and "--enable-lora" not in full
    with pytest.raises(EngineUnavailable, match="not prompt_tuning adapters"):
        vllm_command(ModelUnderTest("tuned", "/models/base", "/runs/pt", "prompt_tuning"), 1, "k")
    with pytest.raises(EngineUnavailable, match="no LoRA rank"):
        vllm_command(ModelUnderTest("tuned", "/models/base", str(tmp_path), "lora"), 1, "k")


def test_a_repetition_penalty_vllm_would_apply_to_the_prompt_is_refused() -> None:
    model = ModelUnderTest("tuned", "/models/base")
    with pytest.raises(EngineUnavailable, match="repetition_penalty is 1.1"):
        VllmServerEngine.start(model, repetition_penalty=1.1)


def test_requests_carry_the_gateways_token_ids_and_name_the_adapter() -> None:
    tokenizer = SimpleNamespace(eos_token_id=2)
    engine = VllmServerEngine(None, "http://127.0.0.1:1", "k", tokenizer, 2048)
    engine.served_name = "served"
    try:
        prompt = Prompt("<|im_start|>user\nHi", [5, 6, 7])
        greedy = Sampling(max_tokens=32, temperature=0.0, top_p=1.0, repetition_penalty=1.0)
        body = engine.request_body(prompt, greedy, stream=True)
        assert body["model"] == "served" and body["prompt"] == [5, 6, 7]
        assert body["temperature"] == 0.0 and body["stop_token_ids"] == [2]
        assert body["stream_options"] == {"include_usage": True}
        assert "stream_options" not in engine.request_body(prompt, greedy, stream=False)
    finally:
        engine.close()
