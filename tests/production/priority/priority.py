"""Run priority for the tests: the thread's first run says it in its metadata (``tier``)."""

from __future__ import annotations

from langgraph_sdk import Priority, PriorityContext, PrioritySettings

priority = Priority()

TIERS = {"urgent": -5, "normal": 0, "batch": 5}


@priority.assign
async def assign(ctx: PriorityContext) -> PrioritySettings | None:
    tier = ctx.run_metadata.get("tier")
    if tier == "broken":
        return {"priority": 9}  # out of range: logged, the run goes on at 0
    if tier is None:
        return None
    return {"priority": TIERS[tier], "fairness_group": str(ctx.assistant_id)}
