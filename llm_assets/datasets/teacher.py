"""An optional teacher: any OpenAI-compatible chat endpoint (vLLM, Ollama, llama.cpp, a hosted
API) asked to write question/answer pairs from document sections.

Plain HTTP through the standard library, so nothing new is installed for a feature that is off
by default. Answers are cached on disk by request, so a re-run pays for no call twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from llm_assets.settings import TeacherConfig

RETRY_STATUS = {408, 429, 500, 502, 503, 504}
# Every later request would fail the same way: stop at the first.
FATAL_STATUS = {401, 403, 404, 405}
_JSON_ARRAY = re.compile(r"\[.*\]", flags=re.DOTALL)


class EndpointSettings(Protocol):
    """What a profile section says about an OpenAI-compatible endpoint (datasets.teacher,
    evaluation.judge)."""

    @property
    def url(self) -> str | None: ...
    @property
    def model(self) -> str | None: ...
    @property
    def api_key_env(self) -> str | None: ...
    @property
    def temperature(self) -> float: ...
    @property
    def timeout_s(self) -> float: ...


class TeacherError(RuntimeError):
    """The teacher endpoint cannot be used at all (unreachable, refused, misconfigured); the
    message says what to change."""


class TeacherReplyError(TeacherError):
    """One request failed or got an unusable reply; other requests may still succeed."""


def chat_completions_url(base_url: str) -> str:
    """The chat completions endpoint of a base URL such as http://host:8000/v1 (a URL that
    already ends in /chat/completions is used as is)."""
    url = base_url.rstrip("/")
    return url if url.endswith("/chat/completions") else f"{url}/chat/completions"


@dataclass
class TeacherClient:
    url: str
    model: str
    api_key: str | None = None
    temperature: float = 0.0
    timeout_s: float = 120.0
    retries: int = 2
    cache_dir: Path | None = None
    requests_sent: int = 0
    cache_hits: int = 0
    section: str = "datasets.teacher"  # the profile section that names it, for messages
    _backoff_s: float = field(default=0.5, repr=False)

    @classmethod
    def from_config(
        cls,
        config: EndpointSettings,
        cache_dir: Path | None = None,
        section: str = "datasets.teacher",
    ) -> TeacherClient:
        """A client for the endpoint a profile `section` names."""
        if not (config.url and config.model):
            raise TeacherError(f"{section} needs url and model; or set enabled: false")
        api_key = None
        if config.api_key_env:
            api_key = os.environ.get(config.api_key_env)
            if not api_key:
                raise TeacherError(
                    f"{section}.api_key_env names ${config.api_key_env}, which is not set; "
                    "export it, or remove api_key_env for an endpoint without a key"
                )
        return cls(
            url=chat_completions_url(config.url),
            model=config.model,
            api_key=api_key,
            temperature=config.temperature,
            timeout_s=config.timeout_s,
            cache_dir=cache_dir,
            section=section,
        )

    def complete(self, messages: list[dict[str, str]]) -> str:
        """The assistant message the endpoint returns for `messages`."""
        payload = {"model": self.model, "messages": messages, "temperature": self.temperature}
        body = json.dumps(payload, sort_keys=True).encode()
        cache = self._cache_path(body)
        if cache is not None and cache.is_file():
            self.cache_hits += 1
            return cache.read_text(encoding="utf-8")
        content = _message_content(self._post(body), self.url)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            temporary = cache.with_name(f".{cache.name}.tmp")
            temporary.write_text(content, encoding="utf-8")
            temporary.replace(cache)
        return content

    def _cache_path(self, body: bytes) -> Path | None:
        if self.cache_dir is None:
            return None
        key = hashlib.sha256(self.url.encode() + b"\x00" + body).hexdigest()
        return self.cache_dir / f"{key}.txt"

    def _post(self, body: bytes) -> Any:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            self.requests_sent += 1
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    return json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as error:
                detail = error.read().decode("utf-8", "replace")[:300]
                message = f"teacher {self.url} answered HTTP {error.code}: {detail}"
                if error.code in FATAL_STATUS:
                    raise TeacherError(
                        f"{message}; check {self.section}.url, model and api_key_env"
                    ) from error
                if error.code not in RETRY_STATUS:
                    raise TeacherReplyError(message) from error
                if attempt == self.retries:
                    raise TeacherError(f"{message} (after {attempt + 1} tries)") from error
            except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
                if attempt == self.retries:
                    raise TeacherError(
                        f"cannot reach {self.url} ({self.section}): {error}; start it, fix "
                        f"{self.section}.url, or set {self.section}.enabled: false"
                    ) from error
            except json.JSONDecodeError as error:
                message = f"teacher {self.url} did not answer JSON: {error}"
                raise TeacherReplyError(message) from error
            # Overloaded or restarting servers recover; back off before asking again.
            time.sleep(self._backoff_s * 2**attempt)
        raise AssertionError("unreachable")


def _message_content(response: Any, url: str) -> str:
    try:
        content = response["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as error:
        raise TeacherReplyError(
            f"teacher {url} answered without choices[0].message.content; is it an "
            "OpenAI-compatible chat completions endpoint?"
        ) from error
    if not isinstance(content, str):
        raise TeacherReplyError(f"teacher {url} answered non-text content")
    return content


def parse_qa_pairs(content: str, limit: int) -> list[tuple[str, str]]:
    """Up to `limit` (question, answer) pairs from a reply holding a JSON array of objects with
    `question` and `answer` (a Markdown code fence or text around it is tolerated); [] if the
    reply holds no such array."""
    match = _JSON_ARRAY.search(content)
    if not match:
        return []
    try:
        items = json.loads(match.group(0))
    except json.JSONDecodeError:
        return []
    pairs = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        question, answer = item.get("question"), item.get("answer")
        if isinstance(question, str) and isinstance(answer, str):
            if question.strip() and answer.strip():
                pairs.append((question.strip(), answer.strip()))
    return pairs[:limit]


@dataclass
class TeacherStats:
    sections_sent: int = 0
    sections_over_budget: int = 0
    pairs: int = 0
    failures: list[str] = field(default_factory=list)


def teacher_section_pairs(
    client: TeacherClient,
    config: TeacherConfig,
    title: str,
    sections: list[tuple[str, str]],
    stats: TeacherStats,
) -> list[dict[str, str]]:
    """Pairs the teacher writes for each (heading, body) section, task `teacher_qa`. A failed
    or unparseable reply costs that section its teacher pairs only, and is noted in `stats`;
    sections beyond `config.max_requests` are counted and not sent. Raises TeacherError when
    the endpoint cannot be used at all."""
    pairs: list[dict[str, str]] = []
    for heading, body in sections:
        if stats.sections_sent >= config.max_requests:
            stats.sections_over_budget += 1
            continue
        stats.sections_sent += 1
        prompt = config.prompt.format(
            title=title, heading=heading, passage=body, n=config.pairs_per_section
        )
        try:
            reply = client.complete([{"role": "user", "content": prompt}])
        except TeacherReplyError as error:
            stats.failures.append(f"{title} / {heading}: {error}")
            continue
        found = parse_qa_pairs(reply, config.pairs_per_section)
        if not found:
            stats.failures.append(f"{title} / {heading}: reply held no question/answer array")
        for question, answer in found:
            pairs.append(
                {
                    "task": "teacher_qa",
                    "section": heading,
                    "instruction": question,
                    "input": "",
                    "output": answer,
                }
            )
    stats.pairs += len(pairs)
    return pairs
