"""The agent's tools: what each finds for a question (also served on /ws/mcp).

They are deterministic and quote the question, as the agent's events do: that is what
lets the specification's leak detector recognise a question wherever it travels. Which
tools a user may run is decided by their plan and role (plans.py), not here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple


class Tool(NamedTuple):
    description: str
    run: Callable[[str], str]


def lookup(question: str) -> str:
    return f'The knowledge base holds one note on "{question}": this reference backend answers every question the same way.'


def search(question: str) -> str:
    return f'The web has one page on "{question}": this reference backend searches nowhere and finds the same page.'


def export(question: str) -> str:
    return f'Exported the figures for "{question}": this reference backend exports one empty table.'


# In the order the config document publishes them.
TOOLS: dict[str, Tool] = {
    "knowledge_lookup": Tool('Look a question up in the knowledge base. Arguments: {"query": string}.', lookup),
    "web_search": Tool('Search the web for a question. Arguments: {"query": string}.', search),
    "data_export": Tool('Export the figures a question asks for. Arguments: {"query": string}.', export),
}
DEFAULT_TOOL = "knowledge_lookup"
