"""An S3 prefix as storage (`s3://bucket/prefix`): botocore's own retries (standard
mode, bounded attempts); conditional writes with If-None-Match and If-Match."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from dbt_runner.errors import InfraError
from dbt_runner.storage.urls import content_type_for, join_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

    from dbt_runner.aws import AwsSettings

log = logging.getLogger(__name__)


class S3Storage:
    """An S3 prefix. Retries are botocore's own (standard mode, bounded attempts)."""

    def __init__(
        self, url: str, aws_settings: AwsSettings | None = None, client: S3Client | None = None
    ) -> None:
        parsed = urlparse(url)
        self.url = url
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.aws_settings = aws_settings
        self._client = client

    @property
    def client(self) -> S3Client:
        if self._client is None:
            from dbt_runner.aws import client

            self._client = client("s3", self.aws_settings)
        return self._client

    def _key(self, key: str) -> str:
        return join_key(self.prefix, key)

    def url_for(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def _fail(self, action: str, key: str, exc: Exception) -> InfraError:
        return InfraError(f"cannot {action} {self.url_for(key)}: {exc}")

    def put_file(self, key: str, path: Path) -> None:
        try:
            self.client.upload_file(
                str(path),
                self.bucket,
                self._key(key),
                ExtraArgs={"ContentType": content_type_for(key)},
            )
        except Exception as exc:  # boto3 raises several families; all mean "storage failed"
            raise self._fail("write", key, exc) from exc

    def put_bytes(self, key: str, data: bytes) -> None:
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type_for(key)
            )
        except Exception as exc:
            raise self._fail("write", key, exc) from exc

    def get_bytes(self, key: str) -> bytes | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            return response["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None
        except Exception as exc:
            raise self._fail("read", key, exc) from exc

    def list_keys(self, prefix: str) -> list[str]:
        full = self._key(prefix) + "/"
        keys: list[str] = []
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                for item in page.get("Contents", []):
                    keys.append(item["Key"][len(self.prefix) + 1 :] if self.prefix else item["Key"])
        except Exception as exc:
            raise self._fail("list", prefix, exc) from exc
        return sorted(keys)

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes 1000 keys at most
            batch = keys[start : start + 1000]
            objects: list[ObjectIdentifierTypeDef] = [{"Key": self._key(key)} for key in batch]
            try:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": objects})
            except Exception as exc:
                raise self._fail("delete under", keys[start], exc) from exc

    def check_writable(self, key: str) -> None:
        """Write and delete a marker at `key`, before any work depends on it: a missing
        bucket or a missing permission fails the run in seconds, naming both."""
        from dbt_runner.aws import error_code

        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=b"")
        except Exception as exc:
            raise InfraError(
                f"cannot write {self.url_for(key)} ({error_code(exc)}): the bucket "
                f"'{self.bucket}' must exist and the job's role needs s3:PutObject on "
                f"arn:aws:s3:::{self.bucket}/{join_key(self.prefix, '*')}"
            ) from exc
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            log.warning(
                "cannot delete %s (%s): docs publishing needs s3:DeleteObject to replace "
                "older files",
                self.url_for(key),
                error_code(exc),
            )

    def get_versioned(self, key: str) -> tuple[bytes, str] | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            return response["Body"].read(), response["ETag"]
        except self.client.exceptions.NoSuchKey:
            return None
        except Exception as exc:
            raise self._fail("read", key, exc) from exc

    def put_new(self, key: str, data: bytes) -> str | None:
        """S3's conditional write: If-None-Match: * (only when the key is absent)."""
        return self._put_if(key, data, IfNoneMatch="*")

    def replace(self, key: str, data: bytes, version: str) -> str | None:
        """If-Match: only while the key still has the ETag `version`."""
        return self._put_if(key, data, IfMatch=version)

    def _put_if(self, key: str, data: bytes, **condition: str) -> str | None:
        try:
            response = self.client.put_object(
                Bucket=self.bucket,
                Key=self._key(key),
                Body=data,
                **condition,  # type: ignore[arg-type]
            )
        except Exception as exc:
            if _condition_failed(exc):
                return None
            raise self._fail("write", key, exc) from exc
        return response["ETag"]

    def delete_version(self, key: str, version: str) -> bool:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key), IfMatch=version)
        except Exception as exc:
            if _condition_failed(exc):
                return False
            raise self._fail("delete", key, exc) from exc
        return True


def _condition_failed(exc: Exception) -> bool:
    """A conditional request refused: the condition did not hold, or another write to
    the key won (409), or the key is gone."""
    from dbt_runner.aws import error_code

    return error_code(exc) in ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey")
