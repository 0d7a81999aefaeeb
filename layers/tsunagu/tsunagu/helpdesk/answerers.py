"""The two answerer adapters (R-HELP-1).

- ``FaqAnswerer`` (the embedded default): BM25 over character n-grams of the account's FAQ
  (``retrieval``), the index kept per warm container and rebuilt when the FAQ's revision (one
  consistent GetItem per question) has moved.
- ``BedrockAnswerer``: retrieval-augmented generation on Amazon Bedrock's Converse API over the
  same FAQ - the best few entries go into the prompt and the model answers from them only, or
  says it cannot (then the chat is escalated). The model id is a deployment parameter."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tsunagu.helpdesk.ports import Answer, FaqSource
from tsunagu.helpdesk.retrieval import FaqIndex


@dataclass
class FaqAnswerer:
    faqs: FaqSource
    _cache: dict[str, tuple[int, FaqIndex]] = field(default_factory=dict)

    def index(self, account_id: str) -> FaqIndex:
        revision = self.faqs.faq_revision(account_id)
        hit = self._cache.get(account_id)
        if hit and hit[0] == revision:
            return hit[1]
        idx = FaqIndex(self.faqs.faq(account_id) if revision else [])
        self._cache[account_id] = (revision, idx)
        return idx

    def answer(self, account_id: str, question: str) -> Answer | None:
        m = self.index(account_id).best(question)
        if m is None:
            return None
        return Answer(m.entry.answer, m.entry.faq_id, m.confidence, "faq")


SYSTEM_PROMPT = (
    "You answer a LINE Official Account's members in Japanese, using only the FAQ entries given. "
    'Reply with one JSON object and nothing else: {"faq_id": "<id of the entry you used>", '
    '"answer": "<a short answer in polite Japanese>"}, or {"faq_id": null, "answer": ""} when '
    "no entry answers the question."
)


@dataclass
class BedrockAnswerer:
    retrieval: FaqAnswerer
    model_id: str
    client: Any = None  # a bedrock-runtime client; built on first use
    top_k: int = 3

    def _client(self) -> Any:
        if self.client is None:
            from tsunagu.infrastructure.aws import client

            self.client = client("bedrock-runtime")
        return self.client

    def answer(self, account_id: str, question: str) -> Answer | None:
        candidates = self.retrieval.index(account_id).ranked(question, self.top_k)
        if not candidates:
            return None
        context = "\n\n".join(f"[{m.entry.faq_id}]\nQ: {m.entry.question}\nA: {m.entry.answer}" for m in candidates)
        r = self._client().converse(
            modelId=self.model_id,
            system=[{"text": SYSTEM_PROMPT}],
            messages=[{"role": "user", "content": [{"text": f"FAQ:\n{context}\n\n質問: {question}"}]}],
            inferenceConfig={"maxTokens": 400, "temperature": 0},
        )
        parts = r.get("output", {}).get("message", {}).get("content", [])
        raw = "".join(str(p.get("text", "")) for p in parts).strip()
        try:
            doc = json.loads(raw[raw.find("{") : raw.rfind("}") + 1])
        except ValueError:
            return Answer("", None, 0.0, "bedrock")
        ids = {m.entry.faq_id for m in candidates}
        faq_id = doc.get("faq_id") if isinstance(doc, dict) else None
        text = str(doc.get("answer", "")).strip() if isinstance(doc, dict) else ""
        if faq_id not in ids or not text:
            return Answer("", None, 0.0, "bedrock")  # the model found no entry: escalate
        return Answer(text[:2000], str(faq_id), 1.0, "bedrock")
