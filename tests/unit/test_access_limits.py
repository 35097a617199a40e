"""What a caller may hold: a token list with an empty secret or name is refused."""

from __future__ import annotations

import pytest

from tori_ingest.core.settings import Settings, SettingsError

# --- 3. an empty secret ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "tokens", ["app:s1,ops:", "app:s1, ops: ", "app:s1,:s2", "app:s1,ops:s2,", " :s3"]
)
def test_a_token_list_with_an_empty_secret_or_name_is_refused(tokens: str) -> None:
    if tokens.endswith(","):  # a trailing comma is only an empty entry: fine
        assert Settings.load({"TORI_API_TOKENS": tokens}).api_tokens == ["app:s1", "ops:s2"]
        return
    with pytest.raises(SettingsError) as refused:
        Settings.load({"TORI_API_TOKENS": tokens})
    assert "TORI_API_TOKENS" in str(refused.value) and "s1" not in str(refused.value)
