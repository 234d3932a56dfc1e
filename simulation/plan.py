"""How a sample's kept events split into chunks (shared by the rules of every backend)."""
from __future__ import annotations


def chunk_sizes(events_per_sample: int, events_per_chunk: int) -> list[int]:
    """Kept events of each chunk: full chunks of `events_per_chunk`, the remainder in the last."""
    if events_per_sample <= 0 or events_per_chunk <= 0:
        raise ValueError(
            f"events per sample and per chunk must be positive, got {events_per_sample}, {events_per_chunk}")
    full, rest = divmod(events_per_sample, events_per_chunk)
    return [events_per_chunk] * full + ([rest] if rest else [])
