"""The loopback server speaks what kagglesdk sends and parses: checked with kagglesdk itself.

kagglesdk (not ``kaggle``) is imported here: it does not authenticate on import. Requests go to
``http://localhost/api/v1/...`` through the server acting as the HTTP proxy, exactly as in push.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
import requests
from kagglesdk.blobs.types.blob_api_service import ApiBlobType, ApiStartBlobUploadRequest
from kagglesdk.datasets.types.dataset_api_service import ApiGetDatasetRequest, ApiGetDatasetStatusRequest
from kagglesdk.datasets.types.dataset_enums import DatabundleVersionStatus
from kagglesdk.kaggle_client import KaggleClient
from kagglesdk.kaggle_env import KaggleEnv
from kagglesdk.kernels.types.kernels_api_service import (
    ApiGetKernelSessionStatusRequest,
    ApiSaveKernelRequest,
)
from kagglesdk.kernels.types.kernels_enums import KernelWorkerStatus

from tests.kaggle_server import TOKEN, Faults, KaggleServer


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[KaggleServer]:
    with KaggleServer(faults=Faults(), kernel_polls=1) as srv:
        for key, value in srv.client_env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("KAGGLE_API_TOKEN", raising=False)
        yield srv


def client(token: str | None = TOKEN) -> KaggleClient:
    return KaggleClient(env=KaggleEnv.LOCAL, api_token=token)


def test_rpc_goes_through_the_proxy_and_is_recorded(server: KaggleServer) -> None:
    server.seed_dataset("me/some-bundle", "bundle_sha256=" + "a" * 64)
    request = ApiGetDatasetRequest()
    request.owner_slug, request.dataset_slug = "me", "some-bundle"
    with client() as kaggle:
        found = kaggle.datasets.dataset_api_client.get_dataset(request)
    assert found.current_version_number == 1
    assert found.versions[0].version_notes.endswith("a" * 64)
    [call] = server.rpcs("GetDataset")
    assert call.path == "/api/v1/datasets.DatasetApiService/GetDataset"
    assert call.body == {"ownerSlug": "me", "datasetSlug": "some-bundle"}
    assert call.auth == "bearer"


def test_status_enums_parse_with_kagglesdk(server: KaggleServer) -> None:
    server.seed_dataset("me/some-bundle", "")
    server.datasets["me/some-bundle"]["polls"] = 0  # as if just uploaded
    status = ApiGetDatasetStatusRequest()
    status.owner_slug, status.dataset_slug = "me", "some-bundle"
    save = ApiSaveKernelRequest()
    save.slug, save.text, save.enable_internet = "me/a-kernel", "print(1)", False
    poll = ApiGetKernelSessionStatusRequest()
    poll.user_name, poll.kernel_slug = "me", "a-kernel"
    with client() as kaggle:
        datasets = kaggle.datasets.dataset_api_client
        assert datasets.get_dataset_status(status).status == DatabundleVersionStatus.BLOBS_RECEIVED
        assert datasets.get_dataset_status(status).status == DatabundleVersionStatus.READY
        saved = kaggle.kernels.kernels_api_client.save_kernel(save)
        assert saved.version_number == 1
        runs = kaggle.kernels.kernels_api_client
        assert runs.get_kernel_session_status(poll).status == KernelWorkerStatus.QUEUED
        assert runs.get_kernel_session_status(poll).status == KernelWorkerStatus.COMPLETE
    assert server.rpcs("SaveKernel")[0].body["enableInternet"] is False


def test_unauthenticated_calls_are_refused(server: KaggleServer) -> None:
    request = ApiGetDatasetRequest()
    request.owner_slug, request.dataset_slug = "me", "missing-one"
    wrong = "not-the-token"
    with client(token=wrong) as kaggle, pytest.raises(requests.HTTPError) as caught:
        kaggle.datasets.dataset_api_client.get_dataset(request)
    assert caught.value.response.status_code == 401
    assert server.rpcs("GetDataset")[0].auth == "invalid"


def test_rate_limit_answers_429_with_retry_after(server: KaggleServer) -> None:
    server.faults.rate_limit["StartBlobUpload"] = 1
    server.faults.retry_after = "3"
    request = ApiStartBlobUploadRequest()
    request.type, request.name, request.content_length = ApiBlobType.DATASET, "MANIFEST.json", 4
    with client() as kaggle:
        with pytest.raises(requests.HTTPError) as caught:
            kaggle.blobs.blob_api_client.start_blob_upload(request)
        assert caught.value.response.status_code == 429
        assert caught.value.response.headers["Retry-After"] == "3"
        started = kaggle.blobs.blob_api_client.start_blob_upload(request)
    assert started.create_url.startswith(server.url + "/upload/")


def test_put_checks_length_and_resume_queries(server: KaggleServer) -> None:
    request = ApiStartBlobUploadRequest()
    request.type, request.name, request.content_length = ApiBlobType.DATASET, "x.bin", 4
    with client() as kaggle:
        started = kaggle.blobs.blob_api_client.start_blob_upload(request)

    def put(data: bytes, headers: dict[str, str] | None = None) -> int:
        req = urllib.request.Request(started.create_url, data=data, method="PUT", headers=headers or {})
        try:
            # Own opener: urlopen's global one would keep this test's proxy settings for later tests.
            with urllib.request.build_opener().open(req) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return error.code

    assert put(b"abc") == 400  # short upload
    assert put(b"", {"Content-Range": "bytes */4"}) == 308  # resume query: nothing kept
    server.faults.expire_upload = True
    assert put(b"", {"Content-Range": "bytes */4"}) == 404  # the session expired
    assert put(b"abcd") == 200
    assert server.blobs[started.token].complete
    assert json.dumps([r.status for r in server.requests if r.method == "PUT"]) == "[400, 308, 404, 200]"
