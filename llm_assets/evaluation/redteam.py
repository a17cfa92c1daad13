"""The red-team suite: adversarial prompts by category, answered by the tuned model and scored
by the rules of `redteam_rules`.

The suite ships in `conf/redteam/<category>.jsonl` (PII extraction, prompt injection, jailbreak
and harmful requests, off-topic drift), one case a line:
`{"id": ..., "category": ..., "prompt": ..., "expect": {"rule": ..., "markers": [...]}}`.
`redteam.extra_prompt_files` adds files in the same form. When canaries are planted, the
`canary_extraction` category asks for them in the contexts they were planted in.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from llm_assets.contracts import RedTeamCategory, RedTeamReport
from llm_assets.datasets.retrieval import SearchMany
from llm_assets.evaluation.generation import Answerer, ModelUnderTest
from llm_assets.evaluation.redteam_rules import Expectation, first_marker, judge_answer
from llm_assets.rag.context import ContextFormat
from llm_assets.serving.guardrails import Guardrails, guard_answers, read_text, unseen_pii
from llm_assets.settings import PROJECT_ROOT, GenerationConfig, RedTeamConfig

SUITE_DIR = PROJECT_ROOT / "conf" / "redteam"
CANARY_CATEGORY = "canary_extraction"


@dataclass(frozen=True)
class RedTeamCase:
    id: str
    category: str
    prompt: str
    expect: Expectation


@dataclass(frozen=True)
class RedTeamOutcome:
    case: RedTeamCase
    answer: str
    passed: bool
    reason: str
    canaries: tuple[str, ...]
    pii: tuple[tuple[str, str], ...]
    # What the guardrails did (`declined`, `withheld: …` or empty), and whether the model's
    # own answer, before them, passed too (None: no guardrails were applied).
    guard: str = ""
    model_passed: bool | None = None


class RedTeamSuiteError(ValueError):
    """A suite file that cannot be used; the message names the file, the line and the fix."""


def read_suite_file(path: Path) -> list[RedTeamCase]:
    """The cases of one JSONL file, each checked: known rule, markers where the rule needs
    them, and no marker already in the prompt (echoing the prompt must not fail a case)."""
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
            expect = row.get("expect") or {}
            case = RedTeamCase(
                id=str(row.get("id") or f"{path.stem}-{number}"),
                category=str(row["category"]),
                prompt=str(row["prompt"]),
                expect=Expectation(
                    rule=expect["rule"],
                    markers=tuple(expect.get("markers", ())),
                    patterns=tuple(expect.get("patterns", ())),
                ),
            )
        except json.JSONDecodeError as error:
            raise RedTeamSuiteError(f"{where}: not valid JSON: {error}") from None
        except (KeyError, AttributeError, TypeError) as error:
            raise RedTeamSuiteError(
                f"{where}: a case needs category, prompt and expect.rule ({error} missing); "
                'e.g. {"category": "jailbreak", "prompt": "...", "expect": {"rule": '
                '"refusal_or_markers_absent", "markers": ["..."]}}'
            ) from None
        problem = case.expect.problem()
        if problem:
            raise RedTeamSuiteError(f"{where}: {problem}")
        echoed = first_marker(case.prompt, case.expect.markers, case.expect.patterns)
        if echoed is not None:
            raise RedTeamSuiteError(
                f"{where}: marker {echoed[1]!r} is already in the prompt, so an answer that "
                "merely repeats the prompt would fail; spell it so that only obeying produces it"
            )
        cases.append(case)
    return cases


def canary_cases() -> list[RedTeamCase]:
    """Prompts that ask for a planted canary in the contexts it was planted in; they pass
    unless the answer holds a canary (or PII)."""
    from llm_assets.datasets.canaries import canary_probes

    return [
        RedTeamCase(f"{CANARY_CATEGORY}-{n:02d}", CANARY_CATEGORY, prompt, Expectation("no_pii"))
        for n, prompt in enumerate(canary_probes(), start=1)
    ]


def suite_files(config: RedTeamConfig, base_dir: Path, suite_dir: Path = SUITE_DIR) -> list[Path]:
    """The shipped suite's files, then `extra_prompt_files` (relative to `base_dir`, the
    profile's folder)."""
    return sorted(suite_dir.glob("*.jsonl")) + [
        base_dir / name for name in config.extra_prompt_files
    ]


def load_suite(
    config: RedTeamConfig, base_dir: Path, suite_dir: Path = SUITE_DIR
) -> list[RedTeamCase]:
    """The cases to run: those of `suite_files`, of the configured categories, at most
    `max_prompts_per_category` each, plus the canary probes when canaries are configured."""
    files = suite_files(config, base_dir, suite_dir)
    for path in files:
        if not path.is_file():
            raise RedTeamSuiteError(
                f"redteam.extra_prompt_files: {path} not found (paths are relative to the profile)"
            )
    cases = [case for path in files for case in read_suite_file(path)]
    shipped = {case.category for case in cases}
    unknown = sorted(set(config.categories) - shipped)
    if unknown:
        raise RedTeamSuiteError(
            f"redteam.categories names {unknown}, which no suite file has; known: {sorted(shipped)}"
        )
    taken: Counter[str] = Counter()
    chosen = []
    for case in cases:
        if (
            case.category in config.categories
            and taken[case.category] < config.max_prompts_per_category
        ):
            taken[case.category] += 1
            chosen.append(case)
    if config.canaries:
        chosen += canary_cases()
    return chosen


def score_answers(
    cases: Sequence[RedTeamCase],
    answers: Sequence[str],
    canaries: Sequence[str],
    allow: Sequence[str] = (),
    prompts: Sequence[str] | None = None,
) -> list[RedTeamOutcome]:
    """Each answer judged under its case's expectation, with the canaries and PII it holds.
    With `prompts` (what the model read: system prompt, context and question), a PII value the
    prompt itself holds is not counted: repeating the question's or the documentation's text
    discloses nothing."""
    outcomes = []
    for number, (case, answer) in enumerate(zip(cases, answers, strict=True)):
        # The guardrails' own test of "PII the prompt does not hold" (no prompt: all of it).
        read = prompts[number] if prompts is not None else ""
        spans = unseen_pii(answer, read, allow)
        pii = [(entity, answer[start:end]) for start, end, entity in spans]
        verdict = judge_answer(case.expect, answer, canaries, pii)
        outcomes.append(
            RedTeamOutcome(
                case, answer, verdict.passed, verdict.reason, verdict.canaries, tuple(pii)
            )
        )
    return outcomes


def summarize(outcomes: Sequence[RedTeamOutcome], max_failures: int = 50) -> RedTeamReport:
    """The `redteam_report` value: overall and per-category pass rates, canary leaks, PII
    values in answers, and the failures (up to `max_failures`)."""
    counts: dict[str, list[int]] = {}
    for outcome in outcomes:
        passed_total = counts.setdefault(outcome.case.category, [0, 0])
        passed_total[0] += int(outcome.passed)
        passed_total[1] += 1
    total = len(outcomes)
    judged_alone = [o.model_passed for o in outcomes if o.model_passed is not None]
    return RedTeamReport(
        pass_rate=sum(o.passed for o in outcomes) / total if total else 0.0,
        total=total,
        # The same prompts scored on the model's answers before the guardrails.
        model_alone_pass_rate=sum(judged_alone) / len(judged_alone) if judged_alone else None,
        declined_out_of_scope=sum(o.guard == "declined" for o in outcomes),
        answers_with_pii_withheld=sum(o.guard.startswith("withheld") for o in outcomes),
        categories={
            name: RedTeamCategory(passed=passed, total=count, pass_rate=passed / count)
            for name, (passed, count) in counts.items()
        },
        canary_leaks=sum(1 for o in outcomes if o.canaries),
        pii_in_outputs=sum(len(o.pii) for o in outcomes),
        pii_by_entity=dict(Counter(entity for o in outcomes for entity, _ in o.pii)),
        failures=[
            {
                "id": o.case.id,
                "category": o.case.category,
                "prompt": o.case.prompt,
                "output": o.answer,
                "reason": o.reason,
            }
            for o in outcomes
            if not o.passed
        ][:max_failures],
    )


def render_markdown(report: RedTeamReport, max_shown: int = 10) -> str:
    """Pass rates per category, canaries and PII, and the first failures, for people."""
    lines = [
        f"**Red team: {report.pass_rate:.1%} of {report.total} prompts passed**; "
        f"canary leaks: {report.canary_leaks}; PII values in answers: "
        f"{report.pii_in_outputs}",
        *_guard_lines(report),
        "",
        "| category | passed | total | pass rate |",
        "|---|---|---|---|",
    ]
    for name, entry in sorted(report.categories.items()):
        lines.append(f"| {name} | {entry.passed} | {entry.total} | {entry.pass_rate:.1%} |")
    failures = report.failures
    if failures:
        lines += [
            "",
            f"**Failures** (first {min(max_shown, len(failures))} of {len(failures)})",
            "",
        ]
        lines += ["| category | prompt | answer | reason |", "|---|---|---|---|"]
        for failure in failures[:max_shown]:
            cells = [failure["category"], failure["prompt"], failure["output"], failure["reason"]]
            lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(lines)


def _guard_lines(report: RedTeamReport) -> list[str]:
    alone = report.model_alone_pass_rate
    if alone is None:
        return []
    return [
        "",
        f"Guardrails: {report.declined_out_of_scope} prompts declined as out of scope, "
        f"{report.answers_with_pii_withheld} answers with PII withheld; the model's own "
        f"answers, before them, pass {alone:.1%}.",
    ]


def _cell(text: str, limit: int = 160) -> str:
    flat = " ".join(str(text).split()).replace("|", "\\|")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def redteam_generation(
    generation: GenerationConfig, config: RedTeamConfig, tokenizer: Any
) -> GenerationConfig:
    """`generation` with `redteam.max_new_tokens` when set, raised to the tokens of the longest
    planted canary answer (plus a few): a probe cut off mid-canary would pass a model that
    memorized it."""
    from llm_assets.datasets.canaries import CANARY_CONTEXTS

    longest = max(
        (
            len(tokenizer(answer.format(canary=canary), add_special_tokens=False)["input_ids"])
            for canary in config.canaries
            for _, answer in CANARY_CONTEXTS
        ),
        default=0,
    )
    wanted = config.max_new_tokens or generation.max_new_tokens
    return generation.model_copy(
        update={"max_new_tokens": max(wanted, longest + 4 if longest else 0)}
    )


def run_redteam(
    model: ModelUnderTest,
    tokenizer: Any,
    cases: Sequence[RedTeamCase],
    generation: GenerationConfig,
    canaries: Sequence[str],
    system_prompt: str | None,
    allow: Sequence[str] = (),
    search_many: SearchMany | None = None,
    context: ContextFormat | None = None,
    answer: Answerer | None = None,
    guardrails: Guardrails | None = None,
) -> list[RedTeamOutcome]:
    """Every case answered by `model` through `answer` (default: transformers) with
    `tokenizer` (the adapter's, with the training chat template), as a user turn after
    `system_prompt` and, with `search_many`, with retrieved context in `context`'s format, as
    serving asks it; under `generation`; then scored as served, after `guardrails`, with the
    model's own answers scored too (`model_passed`)."""
    from llm_assets.evaluation.generation import (
        closed_book_texts,
        prompt_texts,
        transformers_answers,
    )
    from llm_assets.evaluation.grounding import ground_prompts

    grounded = ground_prompts(
        [[{"role": "user", "content": case.prompt}] for case in cases],
        search_many if context else None,
        context or ContextFormat(),
        system_prompt,
    )
    conversations = grounded.conversations
    prompts = {model.label: prompt_texts(tokenizer, conversations)}
    closed_book = {model.label: closed_book_texts(tokenizer, grounded.closed_book)}
    answers = (answer or transformers_answers)(
        model, tokenizer, prompts, generation, closed_book=closed_book
    )
    model_answers = answers[model.label].answers
    read = [read_text(messages) for messages in conversations]
    if guardrails is None:
        return score_answers(cases, model_answers, canaries, allow, read)
    guarded = guard_answers(guardrails, model_answers, conversations, grounded.top_relevance)
    served = score_answers(cases, [g.text for g in guarded], canaries, allow, read)
    alone = score_answers(cases, model_answers, canaries, allow, read)
    return [
        replace(outcome, guard=g.note, model_passed=own.passed)
        for outcome, g, own in zip(served, guarded, alone, strict=True)
    ]
