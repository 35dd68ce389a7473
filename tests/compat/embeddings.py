"""A deterministic embedding function for the semantic-store tests: one axis per topic word, so that
a query about a topic finds the items about it, with no model and no network."""

from __future__ import annotations

import math

TOPICS = ("cat", "dog", "car", "train", "rain", "sun", "tea", "code")


def embed(texts: list[str]) -> list[list[float]]:
    vectors = []
    for text in texts:
        words = text.lower().replace(",", " ").replace(".", " ").split()
        counts = [float(sum(w.startswith(topic) for w in words)) for topic in TOPICS]
        norm = math.sqrt(sum(c * c for c in counts)) or 1.0
        vectors.append(
            [c / norm for c in counts] if any(counts) else [1.0 / math.sqrt(len(TOPICS))] * len(TOPICS)
        )
    return vectors
