"""Reading a pydantic validation error in tests: where it points and what it says."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError


def error_of(model: type, data: Any) -> tuple[tuple[Any, ...], str]:
    """The location and message of the single validation error `data` raises."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    errors = caught.value.errors()
    assert len(errors) == 1, errors
    return errors[0]["loc"], str(caught.value)
