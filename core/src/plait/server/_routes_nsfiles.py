"""``/api/v1/namespaces/{namespace}/files``: namespace files, at Kestra's paths
(NamespaceFileController): content, upload, delete, directory listing, stats and search."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from plait_sdk import Model, UserError
from pydantic import Field

from plait.limits import limits
from plait.nsfiles import FileStat, NamespaceFileStore, check_path
from plait.server._api import Api, Call, check_id
from plait.server._errors import ApiError, not_found
from plait.server._hub import Hub
from plait.server._models import aware


class FilePath(Model):
    path: str = Field(max_length=401, description="The file's path, as `/scripts/etl.py`.")


class DirectoryPath(Model):
    path: str = Field(
        "/", max_length=401, description="The folder's path (`/`, the default, is the root)."
    )
    recursive: bool = Field(
        False, description="Plait's addition: every file below the folder, not only its entries."
    )


class SearchQuery(Model):
    q: str = Field("", max_length=401, description="Text the paths must contain.")


class FileAttributes(Model):
    """Kestra's FileAttributes of a namespace file or folder (with Plait's `path`, `version`)."""

    file_name: str
    type: Literal["File", "Directory"]
    size: int
    creation_time: datetime | None = None
    last_modified_time: datetime | None = None
    path: str
    version: int | None = None


class FileList(Model):
    results: list[FileAttributes]


class Uploaded(Model):
    path: str
    version: int


class FilesDeleted(Model):
    deleted: list[str]


def _attributes(stat: FileStat) -> FileAttributes:
    return FileAttributes(
        file_name=stat.path.rsplit("/", 1)[-1],
        type="File",
        size=stat.size,
        creation_time=aware(stat.created),
        last_modified_time=aware(stat.updated),
        path="/" + stat.path,
        version=stat.version,
    )


def install(api: Api, hub: Hub) -> None:
    def namespace_of(call: Call) -> str:
        namespace = check_id(call.match("namespace"), "namespace")
        if not call.principal.sees(namespace):
            raise not_found(f"namespace {namespace}")
        return namespace

    def store() -> NamespaceFileStore:
        found: NamespaceFileStore | None = hub.runner.namespace_files
        if found is None:
            raise ApiError(404, "namespace files are not configured")
        return found

    def checked(path: str, *, directory: bool = False) -> str:
        try:
            return check_path(path, directory=directory)
        except UserError as error:
            raise ApiError(400, str(error)) from None

    base = "/api/v1/namespaces/{namespace}/files"

    @api.route(
        "GET",
        base,
        summary="The content of a namespace file (its latest version).",
        role="viewer",
        tag="namespace-files",
        query=FilePath,
        produces="application/octet-stream",
    )
    async def get_namespace_file(call: Call) -> web.StreamResponse:
        namespace, path = namespace_of(call), checked(call.query.path)
        data = await store().get(namespace, path)
        if data is None:
            raise not_found(f"namespace file /{path} in {namespace}")
        return web.Response(body=data, content_type="application/octet-stream")

    @api.route(
        "POST",
        base,
        summary="Upload a namespace file (multipart part `fileContent`): a new version when it "
        "exists. At most `PLAIT_LIMIT_NAMESPACE_FILE_MAX_BYTES` (413 above).",
        role="editor",
        tag="namespace-files",
        query=FilePath,
        body_kind="file",
        response=Uploaded,
        errors=(400, 401, 404, 413, 415, 422),
    )
    async def create_namespace_file(call: Call) -> Uploaded:
        namespace, path = namespace_of(call), checked(call.query.path)
        data = await _file_content(call.request)
        try:
            version = await store().put(namespace, path, data)
        except UserError as error:
            raise ApiError(422, str(error)) from None
        return Uploaded(path="/" + path, version=version)

    @api.route(
        "DELETE",
        base,
        summary="Delete a namespace file (every version), or every file under a folder.",
        role="editor",
        tag="namespace-files",
        query=FilePath,
        response=FilesDeleted,
    )
    async def delete_namespace_file(call: Call) -> FilesDeleted:
        namespace = namespace_of(call)
        path = checked(call.query.path, directory=True)
        if not path:
            raise ApiError(400, "name a file or a folder: the whole namespace is not deleted")
        gone = await store().delete(namespace, path)
        if not gone:
            raise not_found(f"namespace file /{path} in {namespace}")
        return FilesDeleted(deleted=["/" + p for p in gone])

    @api.route(
        "GET",
        base + "/directory",
        summary="The entries of a namespace folder: its files and sub-folders (every file "
        "below it with `recursive=true`).",
        role="viewer",
        tag="namespace-files",
        query=DirectoryPath,
        response=FileList,
    )
    async def list_namespace_directory(call: Call) -> FileList:
        namespace = namespace_of(call)
        folder = checked(call.query.path, directory=True)
        files = await store().list(namespace, folder)
        if call.query.recursive:
            return FileList(results=[_attributes(f) for f in files])
        entries: dict[str, FileAttributes] = {}
        depth = len(folder.split("/")) if folder else 0
        for f in files:
            parts = f.path.split("/")
            if len(parts) == depth + 1:
                entries[f.path] = _attributes(f)
            elif len(parts) > depth + 1:
                sub = "/".join(parts[: depth + 1])
                if sub not in entries:
                    entries[sub] = FileAttributes(
                        file_name=parts[depth], type="Directory", size=0, path="/" + sub
                    )
        return FileList(results=sorted(entries.values(), key=lambda e: e.path))

    @api.route(
        "GET",
        base + "/stats",
        summary="The attributes of a namespace file or folder.",
        role="viewer",
        tag="namespace-files",
        query=DirectoryPath,
        response=FileAttributes,
    )
    async def get_namespace_file_stats(call: Call) -> FileAttributes:
        namespace = namespace_of(call)
        path = checked(call.query.path, directory=True)
        files = await store().list(namespace, path)
        exact = next((f for f in files if f.path == path), None)
        if exact is not None:
            return _attributes(exact)
        if files or not path:
            name = path.rsplit("/", 1)[-1] if path else ""
            return FileAttributes(file_name=name, type="Directory", size=0, path="/" + path)
        raise not_found(f"namespace file /{path} in {namespace}")

    @api.route(
        "GET",
        base + "/search",
        summary="The paths of the namespace files containing `q`.",
        role="viewer",
        tag="namespace-files",
        query=SearchQuery,
        response=FileList,
    )
    async def search_namespace_files(call: Call) -> FileList:
        namespace = namespace_of(call)
        wanted = call.query.q.lstrip("/")
        files = await store().list(namespace)
        return FileList(results=[_attributes(f) for f in files if wanted in f.path])


async def _file_content(request: web.Request) -> bytes:
    """The ``fileContent`` part of a multipart upload, within the namespace file limit."""
    if request.content_type != "multipart/form-data":
        raise ApiError(415, "send the file as multipart/form-data with a `fileContent` part")
    limit = limits().namespace_file_max_bytes
    try:
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader) or part.name != "fileContent":
                continue
            data = bytearray()
            while chunk := await part.read_chunk(1 << 16):
                data += chunk
                if len(data) > limit:
                    raise ApiError(
                        413,
                        f"the file is larger than {limit} bytes "
                        "(PLAIT_LIMIT_NAMESPACE_FILE_MAX_BYTES)",
                    )
            return bytes(data)
    except (HttpProcessingError, ValueError, AssertionError) as error:
        raise ApiError(400, f"malformed multipart body: {error}") from None
    raise ApiError(400, "the multipart body has no `fileContent` part")
