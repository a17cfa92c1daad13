"""Report sections on grounding: closed-book against retrieval, retrieval quality on the golden
questions, the held-out factual questions, and the least grounded answers."""

from __future__ import annotations

from typing import Any

from llm_assets.evaluation.report_format import Section, Table


def _number(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _short(text: Any, width: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _interval(delta: dict[str, float]) -> str:
    return f"{delta['delta']:+.4f} [{delta['low']:+.4f}, {delta['high']:+.4f}]"


def grounding_sections(metrics: dict[str, Any]) -> list[Section]:
    sections = []
    modes = metrics.get("retrieval_modes")
    if modes:
        section = Section("Closed-book and with retrieval")
        section.blocks.append(
            "Each model answers the golden prompts as it is served (label without a suffix) and "
            "in the other mode. With retrieval, the rag_index chunks closest to the question are "
            "the context, rendered as training and serving render them. Groundedness: the share "
            "of an answer's content words, numbers, paths and commands found in the question or "
            "the context. Perplexity above is measured closed-book."
        )
        section.blocks.append(
            Table(
                ["model", "mode", "ROUGE-L", "BLEU", "chrF", "groundedness"],
                [
                    [
                        label,
                        entry["mode"],
                        _number(entry["rougeL"]),
                        _number(entry["bleu"], 2),
                        _number(entry["chrf"], 2),
                        _number(entry["groundedness"], 3),
                    ]
                    for label, entry in modes["models"].items()
                ],
            )
        )
        if modes["deltas"]:
            section.blocks.append(
                Table(
                    ["comparison", "ROUGE-L Δ [interval]", "chrF Δ [interval]"],
                    [
                        [name, _interval(delta["rougeL"]), _interval(delta["chrf"])]
                        for name, delta in modes["deltas"].items()
                    ],
                )
            )
        section.blocks.append(
            Table(
                ["task", "rows", "ROUGE-L (tuned, as served)"],
                [
                    [str(row["task"]), str(row["count"]), _number(float(row["rougeL"]))]
                    for row in modes["rougeL_by_task"]
                ],
            )
        )
        sections.append(section)
    rag = metrics.get("rag_index")
    if rag:
        section = Section("Retrieval on the golden questions")
        section.blocks.append(
            f"recall@{rag['k']} {_number(rag['recall_at_k'])}, MRR {_number(rag['mrr'])} over "
            f"{rag['golden_queries']} golden questions whose source record is indexed "
            f"({rag['chunks']} chunks)."
        )
        sections.append(section)
    facts = metrics.get("facts")
    if facts and facts.get("questions"):
        section = Section("Held-out factual questions")
        section.blocks.append(
            f"{facts['stated']} of {facts['questions']} answers ({facts['stated_share']:.0%}) "
            f"state the fact ({facts['mode']}); the fact was in the context of "
            f"{facts['in_context']}. Mean groundedness {facts['groundedness']:.3f}."
        )
        section.blocks.append(
            Table(
                ["question", "facts", "stated", "chunks holding it", "answer"],
                [
                    [
                        _short(row["question"], 80),
                        ", ".join(row["facts"]),
                        "yes" if row["stated"] else "no",
                        ", ".join(row["chunks_with_fact"]) or "–",
                        _short(row["answer"], 120),
                    ]
                    for row in facts["rows"]
                ],
            )
        )
        sections.append(section)
    least = (modes or {}).get("least_grounded")
    if least:
        section = Section("Least grounded answers (tuned, as served)")
        section.blocks.append(
            Table(
                ["groundedness", "prompt", "answer"],
                [
                    [
                        _number(row["groundedness"], 3),
                        _short(row["conversation"], 120),
                        _short(row["answer"], 200),
                    ]
                    for row in least
                ],
            )
        )
        sections.append(section)
    return sections
