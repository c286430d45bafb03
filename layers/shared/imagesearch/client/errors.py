"""What the client raises: the API's problem details, a failed image, a wait that ran out."""

from __future__ import annotations

import httpx
from pydantic import ValidationError

from imagesearch.client.models import Image, Problem


class ApiError(Exception):
    """The API answered with an error; `problem` is its problem+json (status, title, detail, type)."""

    def __init__(self, problem: Problem, *, method: str = "", url: str = "") -> None:
        where = f" ({method} {url})" if method else ""
        super().__init__(f"{problem.status} {problem.title}: {problem.detail}{where}")
        self.problem = problem
        self.method = method
        self.url = url

    @property
    def status(self) -> int:
        return self.problem.status

    @property
    def title(self) -> str:
        return self.problem.title

    @property
    def detail(self) -> str:
        return self.problem.detail

    @property
    def type(self) -> str:
        return self.problem.type

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        """The response's problem details, or ones made up from its status when it has none (a proxy's
        HTML page, a presigned storage URL's XML)."""
        try:
            problem = Problem.model_validate_json(response.content)
        except ValidationError:
            reason = response.reason_phrase or "error"
            problem = Problem(title=reason, status=response.status_code, detail=response.text[:500] or reason)
        # without the query: a presigned URL's signature is no one's business in a log
        return cls(
            problem, method=response.request.method, url=str(response.request.url.copy_with(query=None))
        )


class ImageFailed(Exception):
    """An image the client waited for ended `failed`; `image.error` says why."""

    def __init__(self, image: Image) -> None:
        super().__init__(f"image {image.id} failed: {image.error}")
        self.image = image


class WaitTimeout(TimeoutError):
    """Images were still pending when the wait ran out; `pending` are their last states."""

    def __init__(self, pending: list[Image], timeout: float) -> None:
        super().__init__(f"{len(pending)} image(s) still pending after {timeout:g} s")
        self.pending = pending
