"""The chat template: defined once, saved with the tokenizer, used by training, eval, serving."""

from __future__ import annotations

import hashlib
import re
from typing import Any

# ChatML. Used for base models that ship no template of their own; the `generation` markers let
# trl compute the loss on assistant turns only.
DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}"
    "{% endgeneration %}{{ '\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CHATML_SPECIAL_TOKENS = ("<|im_start|>", "<|im_end|>")


def chat_template_of(tokenizer: Any) -> str | None:
    """The tokenizer's own chat template (the `default` one of a set of named templates)."""
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):
        template = template.get("default")
    return template if isinstance(template, str) and template.strip() else None


# Conversations on which a tokenizer's own template must render exactly as ChatML does for
# ChatML (with its generation markers) to stand in for it.
_CHATML_PROBES = (
    [
        {"role": "system", "content": "System text."},
        {"role": "user", "content": "First question?"},
        {"role": "assistant", "content": "First answer."},
        {"role": "user", "content": "Second question?"},
        {"role": "assistant", "content": "Second answer."},
    ],
)


def training_chat_template(tokenizer: Any) -> tuple[str, str]:
    """(template, origin): the base tokenizer's own template ('tokenizer'), else ChatML
    ('default') for base models that ship none. An own template without `{% generation %}`
    markers (trl needs them for the loss on assistant turns only) that renders conversations
    with a system message exactly as ChatML is replaced by ChatML with markers ('tokenizer,
    as ChatML with generation markers'): the same text and tokens, so the model sees the format
    it was instruction-tuned on. Dataset, training and serving all call this on the same base
    tokenizer, so they cannot pick different templates."""
    own = chat_template_of(tokenizer)
    if not own:
        return DEFAULT_CHAT_TEMPLATE, "default"
    if not has_generation_markers(own) and renders_like_chatml(tokenizer, own):
        return DEFAULT_CHAT_TEMPLATE, "tokenizer, as ChatML with generation markers"
    return own, "tokenizer"


def has_generation_markers(template: str) -> bool:
    return re.search(r"{%-?\s*generation\s*-?%}", template) is not None


def renders_like_chatml(tokenizer: Any, template: str) -> bool:
    """Whether `template` renders the probe conversations, whole and as generation prompts,
    to the same text as ChatML."""
    for messages in _CHATML_PROBES:
        for prompt in (False, True):
            shown = messages[:-1] if prompt else messages
            rendered = [
                tokenizer.apply_chat_template(
                    shown, chat_template=candidate, tokenize=False, add_generation_prompt=prompt
                )
                for candidate in (template, DEFAULT_CHAT_TEMPLATE)
            ]
            if rendered[0] != rendered[1]:
                return False
    return True


def load_chat_tokenizer(path: str, chat_template: str | None = None) -> Any:
    """The tokenizer saved at `path`, with `chat_template` when given, else with the template
    `training_chat_template` picks: what training, evaluation and serving must all render with."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.chat_template = chat_template or training_chat_template(tokenizer)[0]
    return tokenizer


def template_digest(template: str) -> str:
    return hashlib.sha256(template.encode()).hexdigest()[:16]


def to_messages(
    instruction: str, output: str, extra_input: str = "", system_prompt: str | None = None
) -> list[dict[str, str]]:
    """One instruction/response pair as chat messages."""
    user = f"{instruction}\n\n{extra_input}" if extra_input else instruction
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return messages + [{"role": "user", "content": user}, {"role": "assistant", "content": output}]


def render_chat(
    tokenizer: Any, messages: list[dict[str, str]], for_generation: bool = False
) -> str:
    """Text of a conversation under the tokenizer's own template; with `for_generation` the final
    assistant turn is left open for the model to write."""
    if for_generation and messages and messages[-1]["role"] == "assistant":
        messages = messages[:-1]
    return str(
        tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=for_generation
        )
    )


def template_differences(
    reference: Any, candidate: Any, conversations: list[list[dict[str, str]]]
) -> list[str]:
    """Where `candidate` renders or tokenizes a conversation differently from `reference` (the
    tokenizer training used), both as full conversations and as generation prompts; [] if never.
    Template drift between training and serving silently degrades every answer."""
    problems = []
    for number, messages in enumerate(conversations):
        for for_generation in (False, True):
            expected = render_chat(reference, messages, for_generation)
            actual = render_chat(candidate, messages, for_generation)
            kind = "prompt" if for_generation else "conversation"
            if expected != actual:
                problems.append(f"row {number} {kind}: rendered text differs")
            elif (
                reference(expected, add_special_tokens=False)["input_ids"]
                != candidate(actual, add_special_tokens=False)["input_ids"]
            ):
                problems.append(f"row {number} {kind}: same text, different token ids")
    return problems
