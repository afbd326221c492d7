"""A support-ticket intake flow: order number, problem, contact; a summary at the end.

gateway.toml::

    [agents.ticket]
    path = "examples.ticket_flow:flow"

    [[routes]]
    platform = "slack"
    agent = "ticket"

The order number and the contact are checked without a model (a pattern, then pydantic); the problem is
free text, which the model turns into a short description and a category (OPENAI_BASE_URL,
OPENAI_API_KEY, GATEWAY_LLM_MODEL, or a provider in gateway.toml). A message that names the category
itself ("it arrived damaged") needs the model only for the description.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from agents import Flow, Instructions, Step, TurnContext

EMAIL_OR_PHONE = r"[\w.+-]+@[\w-]+(\.[\w-]+)+|\+?\d[\d ()-]{6,}\d"


class Ticket(BaseModel):
    order_number: str = Field(pattern=r"^A-\d{4}$", description="order number, like A-1042")
    problem: str = Field(min_length=5, description="what went wrong, in a sentence")
    category: Literal["damaged", "missing", "late", "other"] = Field(description="kind of problem")
    contact: str = Field(pattern=rf"^({EMAIL_OR_PHONE})$", description="email address or phone number")

    @field_validator("order_number", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value


async def open_ticket(ctx: TurnContext, ticket: Ticket) -> str:
    """Past the last step: keep the ticket (here in the conversation's memory) and confirm it."""
    await ctx.memory.store(f"ticket-{ticket.order_number}", ticket.model_dump_json())
    return (
        f"Ticket opened for order {ticket.order_number} ({ticket.category}): {ticket.problem}. "
        f"We will contact you at {ticket.contact}."
    )


flow = Flow(
    "ticket",
    schema=Ticket,
    instructions=Instructions(
        "You take support tickets for Acme.",
        must=["keep the customer's own words for the problem"],
        must_not=["promise a refund or a delivery date"],
        should=["be brief and friendly"],
    ),
    steps=[
        Step("order", collect=["order_number"], prompt="Which order is it about? (an order number, like A-1042)"),
        Step(
            "problem",
            collect=["problem", "category"],
            prompt="What went wrong with order {order_number}?",
            free_text=True,
            branch=lambda data: "damaged" if data["category"] == "damaged" else "contact",
        ),
        Step("damaged", prompt="Sorry it arrived damaged. Please keep the packaging until we are in touch."),
        Step("contact", collect=["contact"], prompt="How can we reach you? (email or phone)"),
    ],
    on_done=open_ticket,
)
