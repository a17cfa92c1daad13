"""A report as sections of paragraphs, tables and figures, rendered to Markdown and to one
self-contained HTML page (figures inlined as base64 PNG). One structure, two renderings, so the
Markdown in the Dagster UI and the HTML logged to MLflow never disagree."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Figure:
    name: str  # file stem when written beside the Markdown: <name>.png
    caption: str
    png: bytes


Block = str | Table | Figure


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(title: str, sections: list[Section], figure_links: bool = True) -> str:
    """Markdown; figures as links to <name>.png beside the file (figure_links) or left out
    (for the Dagster UI, where the HTML report carries them)."""
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Table):
                lines.append("| " + " | ".join(block.columns) + " |")
                lines.append("|" + "|".join("---" for _ in block.columns) + "|")
                lines += ["| " + " | ".join(map(_markdown_cell, row)) + " |" for row in block.rows]
            elif isinstance(block, Figure):
                if not figure_links:
                    continue
                lines.append(f"![{block.caption}]({block.name}.png)")
            else:
                lines.append(block)
            lines.append("")
    return "\n".join(lines)


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 980px; margin: 2em auto; color: #222;
       line-height: 1.45; padding: 0 1em; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
figure { margin: 1em 0; } figcaption { color: #555; font-size: 0.9em; }
img { max-width: 100%; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
"""


def _inline(text: str) -> str:
    """Escaped text with `code` and **bold** spans, the only Markdown the sections use."""
    escaped = html.escape(text)
    parts = escaped.split("`")
    escaped = "".join(
        f"<code>{part}</code>" if index % 2 else part for index, part in enumerate(parts)
    )
    parts = escaped.split("**")
    return "".join(f"<b>{part}</b>" if index % 2 else part for index, part in enumerate(parts))


def to_html(title: str, sections: list[Section]) -> str:
    """One HTML page with no outside references: styles inline, figures as data URIs."""
    body = [f"<h1>{html.escape(title)}</h1>"]
    for section in sections:
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        for block in section.blocks:
            if isinstance(block, Table):
                head = "".join(f"<th>{html.escape(c)}</th>" for c in block.columns)
                rows = "".join(
                    "<tr>" + "".join(f"<td>{_inline(cell)}</td>" for cell in row) + "</tr>"
                    for row in block.rows
                )
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
            elif isinstance(block, Figure):
                data = base64.b64encode(block.png).decode("ascii")
                body.append(
                    f'<figure><img alt="{html.escape(block.caption)}" '
                    f'src="data:image/png;base64,{data}"/>'
                    f"<figcaption>{html.escape(block.caption)}</figcaption></figure>"
                )
            elif block.startswith("- "):
                items = "".join(f"<li>{_inline(line[2:])}</li>" for line in block.splitlines())
                body.append(f"<ul>{items}</ul>")
            else:
                body.append(f"<p>{_inline(block)}</p>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )
