"""One root error, one class per failure; the docstring is the default message.

HTTP status codes for these live in one table, in `graphrun.api.errors`.
"""

from __future__ import annotations


class GraphrunError(Exception):
    """graphrun failed."""

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (self.__doc__ or type(self).__name__).strip()
        super().__init__(self.message)


class ConfigError(GraphrunError):
    """The configuration is invalid."""


class NotFound(GraphrunError):
    """Not found."""


class AssistantNotFound(NotFound):
    """Assistant not found."""


class ThreadNotFound(NotFound):
    """Thread not found."""


class RunNotFound(NotFound):
    """Run not found."""


class CronNotFound(NotFound):
    """Cron not found."""


class Forbidden(GraphrunError):
    """Forbidden: the caller's authorization does not allow this."""


class Refused(GraphrunError):
    """An auth handler refused the request with its own status (its ``HTTPException``)."""

    def __init__(
        self, message: str | None = None, status: int = 401, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


class InvalidRequest(GraphrunError):
    """The request is invalid."""


class BadRequest(InvalidRequest):
    """The request is malformed."""


class Conflict(GraphrunError):
    """The request conflicts with the current state."""


class DeltaThreadNotPrunable(Conflict):
    """The thread uses a DeltaChannel: its state is rebuilt from the writes of its earlier checkpoints, so
    keep_latest would lose it; prune it with strategy delete, or leave it."""


class ThreadBusy(Conflict):
    """Thread is already running a run; multitask_strategy='reject' refuses a second one."""


class AlreadyExists(Conflict):
    """Already exists."""


class ShuttingDown(GraphrunError):
    """The server is shutting down; retry the request (the run goes on and can be joined)."""


class WaitTimedOut(GraphrunError):
    """The run did not finish within the time the request may wait."""


class LeaseLost(GraphrunError):
    """This worker no longer holds the run's lease (another attempt took it over)."""


class DataDirLocked(GraphrunError):
    """The data directory is in use by another graphrun process."""


class StoreUnavailable(GraphrunError):
    """The database is unreachable right now; retry the request shortly."""
