"""KeyringSpec: how to build a keyring, as plain values (picklable, no secret), so the CLI,
the FieldEncryption constructor and Spark's executors build keyrings one way."""

from __future__ import annotations

import os
from dataclasses import dataclass

from field_encryption.errors import ConfigurationError
from field_encryption.keyrings.aws_kms import AwsKmsKeyring
from field_encryption.keyrings.base import Keyring
from field_encryption.keyrings.local import LocalKeyring
from field_encryption.keyrings.multi import MultiKeyring


@dataclass(frozen=True)
class KeyringSpec:
    """A KMS key (with keys, in other regions say, that wrap each data key too), or a local
    key file (development only)."""

    kms_key_id: str | None = None
    dr_key_ids: tuple[str, ...] = ()
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    local_key: str | os.PathLike[str] | None = None

    def __post_init__(self) -> None:
        if self.kms_key_id and self.local_key:
            raise ConfigurationError("give a KMS key or a local key file, not both")
        if not self.kms_key_id and not self.local_key:
            raise ConfigurationError("a keyring needs a KMS key id (ARN or alias) or a local "
                                     "key file")
        if self.local_key and self.dr_key_ids:
            raise ConfigurationError("further KMS keys (dr_key_ids) need a KMS key")

    def build(self) -> Keyring:
        if self.local_key:
            return LocalKeyring.from_file(self.local_key)
        assert self.kms_key_id is not None
        primary = AwsKmsKeyring(self.kms_key_id, region=self.region, profile=self.profile,
                                endpoint_url=self.endpoint_url)
        if not self.dr_key_ids:
            return primary
        return MultiKeyring(primary, [
            AwsKmsKeyring(k, profile=self.profile, endpoint_url=self.endpoint_url)
            for k in self.dr_key_ids])
