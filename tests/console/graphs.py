"""A graph for the console's other kind of approval card: an interrupt whose ``response_schema`` offers
approve / edit / reject as the values of a ``decision`` discriminator."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from pydantic import BaseModel, Field, RootModel


class Approve(BaseModel):
    decision: Literal["approve"]


class Edit(BaseModel):
    decision: Literal["edit"]
    args: dict[str, Any]


class Reject(BaseModel):
    decision: Literal["reject"]
    reason: str = ""


class Decision(RootModel[Annotated[Approve | Edit | Reject, Field(discriminator="decision")]]):
    pass


class Post(TypedDict, total=False):
    draft: dict[str, Any]
    outcome: str


def review(state: Post) -> Post:
    asked = {"question": "Publish this post?", "args": state["draft"]}
    decision = interrupt(asked, response_schema=Decision).root
    match decision:
        case Approve():
            return {"outcome": f"published {state['draft']['title']}"}
        case Edit(args=args):
            return {"outcome": f"published {args['title']}"}
        case Reject(reason=reason):
            return {"outcome": f"rejected: {reason}"}
    raise AssertionError(decision)


reviewed = (
    StateGraph(Post).add_node("review", review).add_edge(START, "review").add_edge("review", END).compile()
)
