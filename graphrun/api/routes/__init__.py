"""One module per resource of the LangGraph Server API."""
