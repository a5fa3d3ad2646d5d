"""AWS KMS keyring: GenerateDataKey, Encrypt, Decrypt and ReEncrypt through boto3.

The client retries throttling and transient failures itself (exponential backoff with
full jitter) so the number of attempts and the final error are under its control;
botocore's own retries are turned off for the clients it builds.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from field_encryption.errors import (
    ConfigurationError,
    KeyringError,
    KeyUnavailableError,
    ThrottledError,
)
from field_encryption.keyrings.base import (
    DATA_KEY_LEN,
    EncryptedDataKey,
    EncryptionContext,
    Keyring,
    no_usable_key,
)

log = logging.getLogger(__name__)

PROVIDER = "aws-kms"

RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "KMSInternalException",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "DependencyTimeoutException",
    }
)
UNAVAILABLE_CODES = frozenset(
    {
        "DisabledException",
        "KMSInvalidStateException",
        "NotFoundException",
        "AccessDeniedException",
        "KeyUnavailableException",
        "InvalidKeyUsageException",
        "UnrecognizedClientException",
    }
)
# the wrapped key does not belong to this key or context: try the next one
MISMATCH_CODES = frozenset({"IncorrectKeyException", "InvalidCiphertextException"})


def region_from_arn(key_id: str) -> str | None:
    """The region of a KMS key or alias ARN, or None for a bare id or alias name."""
    parts = key_id.split(":")
    if len(parts) >= 6 and parts[0] == "arn" and parts[2] == "kms" and parts[3]:
        return parts[3]
    return None


def _is_key_arn(key_id: str) -> bool:
    return key_id.startswith("arn:") and ":key/" in key_id


def kms_client_config() -> Any:
    """botocore Config for KMS clients: no botocore retries (the keyring retries itself)."""
    from botocore.config import Config

    return Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=5,
        read_timeout=30,
        user_agent_extra="field-encryption",
    )


class AwsKmsKeyring(Keyring):
    """Wraps data keys with one AWS KMS key.

    ``key_id`` may be a key ARN, key id, alias name (``alias/x``) or alias ARN. A key ARN
    lets the keyring skip wrapped keys of other KMS keys without calling KMS. Pass a
    ready ``client`` (tests, custom sessions) or let the keyring build one from
    ``region`` (default: the ARN's region), ``profile`` and ``endpoint_url``; without
    ``endpoint_url`` boto3 honours ``AWS_ENDPOINT_URL`` from the environment.
    """

    def __init__(
        self,
        key_id: str,
        *,
        region: str | None = None,
        profile: str | None = None,
        endpoint_url: str | None = None,
        client: Any = None,
        grant_tokens: Sequence[str] = (),
        max_attempts: int = 6,
        base_delay: float = 0.05,
        max_delay: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if not key_id or not isinstance(key_id, str):
            raise ConfigurationError("aws_kms keyring needs a KMS key id, key ARN or alias")
        if max_attempts < 1:
            raise ConfigurationError("max_attempts must be at least 1")
        self.key_id = key_id
        self.region = region or region_from_arn(key_id)
        self._profile = profile
        self._endpoint_url = endpoint_url
        self._client = client
        self._client_lock = threading.Lock()
        self._grant_tokens = list(grant_tokens)
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._sleep = sleep
        self._jitter = jitter

    @property
    def identity(self) -> str:
        return f"{PROVIDER}:{self.key_id}"

    def __repr__(self) -> str:
        return f"AwsKmsKeyring({self.key_id!r}, region={self.region!r})"

    # -- boto3 plumbing ---------------------------------------------------------------
    def client(self) -> Any:
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = self._build_client()
        return self._client

    def _build_client(self) -> Any:
        try:
            import boto3
        except ImportError as exc:  # pragma: no cover - boto3 is a dependency
            raise ConfigurationError("the aws_kms keyring needs boto3: pip install boto3") from exc
        config = kms_client_config()
        try:
            session = boto3.session.Session(profile_name=self._profile, region_name=self.region)
            return session.client("kms", endpoint_url=self._endpoint_url, config=config)
        except Exception as exc:
            raise ConfigurationError(
                f"cannot create a KMS client (profile={self._profile!r}, "
                f"region={self.region!r}): {type(exc).__name__}: {exc}"
            ) from None

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionClosedError,
            EndpointConnectionError,
            NoCredentialsError,
            ReadTimeoutError,
        )

        if self._grant_tokens:
            params["GrantTokens"] = self._grant_tokens
        method = getattr(self.client(), operation)
        last = ""
        for attempt in range(self._max_attempts):
            try:
                return method(**params)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "Unknown")
                if code in RETRYABLE_CODES:
                    last = code
                else:
                    raise _client_error(code, operation, self.key_id) from None
            except (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError) as exc:
                last = type(exc).__name__
            except NoCredentialsError:
                raise KeyringError(
                    f"KMS {operation} for {self.key_id}: no AWS credentials found; "
                    "set a profile or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
                ) from None
            except BotoCoreError as exc:
                raise KeyringError(
                    f"KMS {operation} for {self.key_id} failed: {type(exc).__name__}"
                ) from None
            if attempt + 1 < self._max_attempts:
                cap = min(self._max_delay, self._base_delay * (2**attempt))
                delay = cap * self._jitter()
                log.debug("KMS %s throttled or unavailable (%s); retrying", operation, last)
                self._sleep(delay)
        raise ThrottledError(
            f"KMS {operation} for {self.key_id} still failing after {self._max_attempts} "
            f"attempts ({last}); lower the request rate, raise the KMS quota, or enable the "
            "data-key cache"
        )

    # -- Keyring ------------------------------------------------------------------
    def generate(self, context: EncryptionContext) -> tuple[bytes, list[EncryptedDataKey]]:
        response = self._call(
            "generate_data_key",
            KeyId=self.key_id,
            KeySpec="AES_256",
            EncryptionContext=dict(context),
        )
        plaintext = response.get("Plaintext", b"")
        if len(plaintext) != DATA_KEY_LEN:
            raise KeyringError(f"KMS GenerateDataKey for {self.key_id} returned a bad key length")
        arn = response.get("KeyId") or self.key_id
        return plaintext, [EncryptedDataKey(PROVIDER, arn, response["CiphertextBlob"])]

    def wrap(self, data_key: bytes, context: EncryptionContext) -> list[EncryptedDataKey]:
        response = self._call(
            "encrypt", KeyId=self.key_id, Plaintext=data_key, EncryptionContext=dict(context)
        )
        arn = response.get("KeyId") or self.key_id
        return [EncryptedDataKey(PROVIDER, arn, response["CiphertextBlob"])]

    def _candidates(self, edks: Sequence[EncryptedDataKey]) -> list[EncryptedDataKey]:
        mine = [e for e in edks if e.provider == PROVIDER]
        if _is_key_arn(self.key_id):
            return [e for e in mine if e.key_id == self.key_id]
        return mine

    def unwrap(self, edks: Sequence[EncryptedDataKey], context: EncryptionContext,
               key_lengths: tuple[int, ...] = (DATA_KEY_LEN,)) -> bytes:
        tried: list[str] = []
        for edk in self._candidates(edks):
            try:
                response = self._call(
                    "decrypt",
                    CiphertextBlob=edk.blob,
                    KeyId=self.key_id,
                    EncryptionContext=dict(context),
                )
            except _Mismatch as exc:
                tried.append(f"{edk.key_id}: {exc.code}")
                continue
            plaintext = response.get("Plaintext", b"")
            if len(plaintext) not in key_lengths:
                tried.append(f"{edk.key_id}: bad key length")
                continue
            return plaintext
        raise no_usable_key(self.identity, tried)

    def reencrypt(self, edk: EncryptedDataKey, context: EncryptionContext) -> EncryptedDataKey:
        """KMS ReEncrypt of one wrapped key to this keyring's key; plaintext stays in KMS."""
        response = self._call(
            "re_encrypt",
            CiphertextBlob=edk.blob,
            SourceKeyId=edk.key_id,
            SourceEncryptionContext=dict(context),
            DestinationKeyId=self.key_id,
            DestinationEncryptionContext=dict(context),
        )
        arn = response.get("KeyId") or self.key_id
        return EncryptedDataKey(PROVIDER, arn, response["CiphertextBlob"])

    def rewrap(
        self,
        edks: Sequence[EncryptedDataKey],
        context: EncryptionContext,
        source: Keyring,
    ) -> list[EncryptedDataKey]:
        for child in source.children():
            if not isinstance(child, AwsKmsKeyring):
                continue
            for edk in child._candidates(edks):
                try:
                    return [self.reencrypt(edk, context)]
                except _Mismatch:
                    continue
        # no KMS-wrapped copy this identity can re-encrypt (e.g. a local key): unwrap, wrap
        return self.wrap(source.unwrap(edks, context), context)


class _Mismatch(KeyringError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _client_error(code: str, operation: str, key_id: str) -> KeyringError:
    if code in MISMATCH_CODES:
        return _Mismatch(code, f"KMS {operation}: {code} for {key_id}")
    if code in UNAVAILABLE_CODES:
        return KeyUnavailableError(
            f"KMS {operation} refused for {key_id}: {code}. Check that the key exists, is "
            "enabled, and that this identity may use it (key policy, grants, IAM)."
        )
    return KeyringError(f"KMS {operation} for {key_id} failed: {code}")
