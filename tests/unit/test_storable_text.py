"""Request bodies whose text PostgreSQL cannot store (NUL, unpaired surrogates) are refused in both modes,
naming where the text is; ordinary text of any script passes."""

from __future__ import annotations

import pydantic
import pytest

from graphrun.api import schemas


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"metadata": {"note": "a\x00b"}}, "metadata.note"),
        ({"metadata": {"tags": ["ok", "\ud800"]}}, "metadata.tags.1"),
        ({"metadata": {"k\x00": 1}}, "metadata.k"),
    ],
)
def test_unstorable_text_is_refused_with_its_place(body: dict[str, object], where: str) -> None:
    with pytest.raises(pydantic.ValidationError) as refused:
        schemas.ThreadCreate.model_validate(body)

    message = str(refused.value)
    assert where in message
    assert "NUL" in message


def test_text_of_any_script_passes() -> None:
    body = {"metadata": {"名前": "こんにちは 👋", "emoji": "\U0001f600", "rtl": "שלום"}}

    assert schemas.ThreadCreate.model_validate(body).metadata == body["metadata"]
