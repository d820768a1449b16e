"""A form's refusal shown as people expect: each error beside its field, and all of them summarised at the top.

The GOV.UK Design System's error summary and error message patterns: the summary (a list of links
to the fields) comes first on the page, each field says its own error above its input, and the
values typed are kept. Forms are checked with the API's own request models (pydantic) and the
domain's own rules, so a form and the API refuse the same things in the same words; a refusal
`ServiceError` carries its issues' `at` (a field's path), which become the fields' errors.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from sync_service.platform.errors import ServiceError

M = TypeVar("M", bound=BaseModel)


@dataclass
class FormErrors:
    """The errors of one form: (field, message) in the form's order; field '' is the whole form's."""

    items: list[tuple[str, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.items)

    def add(self, at: str, message: str) -> None:
        self.items.append((at, message))

    def of(self, name: str) -> str | None:
        """The error of field `name` (the first, when several), or None."""
        return next((message for at, message in self.items if at == name), None)

    def refusal(self, exc: ServiceError) -> None:
        """A domain refusal: each issue at its field, or the detail as the form's error when it names none."""
        issues = exc.issues or []
        for issue in issues:
            self.add(_field_name(issue.get("at", "")), str(issue.get("message", "")))
        if not issues:
            self.add("", exc.detail)

    def validation(self, exc: ValidationError) -> None:
        for error in exc.errors():
            at = ".".join(str(part) for part in error.get("loc", ()))
            self.add(_field_name(at), _sentence(error.get("msg", "is not valid")))


def _field_name(at: str) -> str:
    """An issue's path ("body.amount", "lines[3].budget") as the form field it names."""
    for prefix in ("body.", "form.", "query."):
        if at.startswith(prefix):
            return at[len(prefix) :]
    return at


def _sentence(message: str) -> str:
    message = message.removeprefix("Value error, ")
    return message[:1].upper() + message[1:]


def checked(model: type[M], data: Mapping[str, Any], errors: FormErrors) -> M | None:
    """`data` (a form's fields) as the API's request model, or None with each field's error added to `errors`."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        errors.validation(exc)
        return None


@contextmanager
def refusal_into(errors: FormErrors) -> Iterator[None]:
    """Run a form's action: a domain refusal becomes the form's errors (nothing was changed by it)."""
    try:
        yield
    except ServiceError as exc:
        errors.refusal(exc)
