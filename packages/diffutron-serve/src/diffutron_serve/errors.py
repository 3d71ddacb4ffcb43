"""Errors in the OpenAI error format: every refused request is a 4xx with
``{"error": {"message", "type", "param", "code"}}``, never a 500 or a traceback."""

from __future__ import annotations

from diffutron_common import DiffutronError


class APIError(DiffutronError):
    """A request the server refuses: its HTTP ``status`` and the OpenAI error fields."""

    def __init__(
        self,
        message: str,
        status: int = 400,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.type, self.param, self.code = status, type, param, code

    def body(self) -> dict[str, dict[str, str | None]]:
        return {
            "error": {
                "message": str(self),
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def model_not_found(asked: str, served: str) -> APIError:
    """A request (or ``GET /v1/models/{id}``) for a model this server does not serve (404)."""
    return APIError(
        f"the model {asked!r} does not exist; this server serves {served!r}",
        404,
        param="model",
        code="model_not_found",
    )


def bad_request(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(message, 400, param=param, code=code)


class ServeError(DiffutronError):
    """The server cannot run (its model failed to load)."""
