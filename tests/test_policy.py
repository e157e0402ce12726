"""docs/outputs.md#policy-file: the policy file: any subset of keys, refused with a message naming the key."""

import pytest

from exportaudit.policy import Policy, PolicyError, load_policy


def write(tmp_path, text):
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return path


def test_defaults_are_the_spec_values():
    assert Policy().section("retry") == {
        "max_attempts": 5, "base_delay_minutes": 15, "backoff_multiplier": 2.0, "max_delay_minutes": 1440,
        "max_delivery_age_days": 7, "idempotent_connector_kinds": ["s3", "gcs", "azure_blob"]}
    assert Policy().section("health") == {"required_retention_days": 2557, "expiry_warning_days": 30,
                                          "max_check_age_days": 7, "accept_governance_mode": False,
                                          "s3_inventory_prefixes": [""]}
    assert Policy().max_quarantine_ratio == 0.05
    assert load_policy(None) == Policy()


def test_a_subset_overrides_and_fractions_are_allowed(tmp_path):
    policy = load_policy(write(tmp_path, 'max_attempts = 3\nbase_delay_minutes = 0.5\nmax_check_age_days = 1.5\n'
                                         'idempotent_connector_kinds = []\nbackoff_multiplier = 1\n'
                                         'max_delay_minutes = 0.25\nmax_quarantine_ratio = 1\n'))
    assert (policy.max_attempts, policy.base_delay_minutes, policy.max_check_age_days) == (3, 0.5, 1.5)
    assert policy.idempotent_connector_kinds == [] and policy.expiry_warning_days == 30


@pytest.mark.parametrize(("text", "key"), [
    ("max_retries = 3", "max_retries"),
    ("max_attempts = 0", "max_attempts"),
    ("max_attempts = 2.5", "max_attempts"),
    ("max_attempts = true", "max_attempts"),
    ('base_delay_minutes = "15"', "base_delay_minutes"),
    ("backoff_multiplier = 0.5", "backoff_multiplier"),
    ("max_delay_minutes = -1", "max_delay_minutes"),
    ("max_delivery_age_days = -0.1", "max_delivery_age_days"),
    ("expiry_warning_days = -3", "expiry_warning_days"),
    ("max_quarantine_ratio = 1.5", "max_quarantine_ratio"),
    ("max_quarantine_ratio = -0.1", "max_quarantine_ratio"),
    ("accept_governance_mode = 1", "accept_governance_mode"),
    ('s3_inventory_prefixes = "exports/"', "s3_inventory_prefixes"),
    ("s3_inventory_prefixes = [1]", "s3_inventory_prefixes"),
    ("idempotent_connector_kinds = 's3'", "idempotent_connector_kinds"),
    ("[retry]\nmax_attempts = 3", "retry"),
])
def test_bad_keys_are_refused_naming_the_key(tmp_path, text, key):
    with pytest.raises(PolicyError, match=key):
        load_policy(write(tmp_path, text))


def test_unreadable_or_invalid_toml(tmp_path):
    with pytest.raises(PolicyError, match="policy file"):
        load_policy(tmp_path / "missing.toml")
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policy(write(tmp_path, "max_attempts = = 3"))
