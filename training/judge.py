"""An optional LLM judge that scores a summary 0-10 given the transcript and the query, as the paper does.

The judge is either an OpenAI-compatible chat endpoint, written `https://host/v1#model-name`
(key in SPEECHSUM_JUDGE_API_KEY), or a local model: a Hugging Face dir, a hub id, or the packaged
SmolLM2. It is off by default: a 135M judge says little, and an endpoint needs a network.
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

PROMPT = """You are grading a summary of a meeting transcript.

Question the summary must answer: {query}

Transcript:
{transcript}

Summary:
{summary}

Rate the summary from 0 (useless or wrong) to 10 (complete, faithful to the transcript, concise).
Reply with the number only."""


def parse_score(reply: str) -> float | None:
    """The first number from 0 to 10 in the judge's reply ("Score: 7/10" -> 7.0), else None."""
    for token in re.findall(r"\d+(?:\.\d+)?", reply):
        if 0 <= float(token) <= 10:
            return float(token)
    return None


@dataclass
class Judge:
    name: str
    ask: Callable[[str], str]

    def score(self, query: str, transcript: str, summary: str) -> float | None:
        return parse_score(self.ask(PROMPT.format(query=query, transcript=transcript, summary=summary)))


def openai_chat(base_url: str, model: str, prompt: str, timeout_s: float = 120) -> str:
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "temperature": 0, "max_tokens": 8}
    request = urllib.request.Request(
        base_url.rstrip("/") + "/chat/completions", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json",
                 "Authorization": f"Bearer {os.environ.get('SPEECHSUM_JUDGE_API_KEY', 'none')}"},
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        return json.load(response)["choices"][0]["message"]["content"]


def load_judge(spec: str, models_dir, device: str = "cpu") -> Judge:
    if spec.startswith(("http://", "https://")):
        url, _, model = spec.partition("#")
        return Judge(spec, lambda prompt: openai_chat(url, model or "default", prompt))
    from models.llm import ChatLM, Decoding
    from models.sources import resolve_llm

    llm = ChatLM.load(resolve_llm(spec, models_dir), device)
    return Judge(llm.version, lambda prompt: llm.chat([{"role": "user", "content": prompt}], Decoding(max_new_tokens=8)))
