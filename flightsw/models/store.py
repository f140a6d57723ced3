"""Content-addressed store of ONNX models, and the assembler for chunked uploads.

A model is named by the sha256 hex digest of its file bytes, so the same file uploaded twice
(or by two ground stations) is stored once, and a job that names a hash always runs exactly
the bytes that were hashed. Files live flat under the store root as ``<hash>.onnx`` and are
written atomically (temporary file in the same directory, fsync, rename), so a crash never
leaves a half-written model under a valid name.

Models travel over links in chunks (:func:`chunk_model`). :meth:`ModelStore.receive_chunk`
collects them in any order, ignores duplicates (delivery is at-least-once) and stores the
model once every chunk has arrived and the bytes hash to the announced name.
"""

from __future__ import annotations

import builtins
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from flightsw.atomicfile import write_atomic
from flightsw.exceptions import ModelStoreError, UnknownModelError

__all__ = [
    "MODEL_SUFFIX",
    "ModelStore",
    "ModelUpload",
    "check_model_hash",
    "chunk_model",
    "sha256_bytes",
    "sha256_file",
]

MODEL_SUFFIX = ".onnx"
_HASH_RE = re.compile(r"^[0-9a-f]{64}$")
_READ_BLOCK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    """sha256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path | str) -> str:
    """sha256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_READ_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def check_model_hash(model_hash: str) -> str:
    """Return ``model_hash`` in canonical form (lower case) or raise :class:`UnknownModelError`.

    A model hash is 64 hexadecimal digits; anything else (including path tricks such as
    ``../x``) can never name a stored model.
    """
    if isinstance(model_hash, str):
        canonical = model_hash.lower()
        if _HASH_RE.fullmatch(canonical):
            return canonical
    raise UnknownModelError(
        f"model hash {model_hash!r} is not a sha256 hex digest (64 hexadecimal digits)"
    )


def chunk_model(data: bytes, chunk_size: int) -> list[bytes]:
    """Split model bytes into chunks of at most ``chunk_size`` bytes (at least one chunk)."""
    if chunk_size <= 0:
        raise ModelStoreError(f"chunk_size must be positive, got {chunk_size}")
    if not data:
        return [b""]
    return [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]


def _short(model_hash: str) -> str:
    return model_hash[:12]


@dataclass
class ModelUpload:
    """Chunks of one model received so far; complete when every index in [0, total) is held."""

    model_hash: str
    total: int
    chunks: dict[int, bytes] = field(default_factory=dict)

    def add(self, index: int, total: int, data: bytes) -> bool:
        """Record chunk ``index`` of ``total``; return True once every chunk has arrived.

        A chunk received twice with the same bytes is ignored. A different ``total`` than
        the first chunk announced, an index outside ``[0, total)`` or different bytes for an
        index already held raise :class:`ModelStoreError`.
        """
        name = _short(self.model_hash)
        if total != self.total:
            raise ModelStoreError(
                f"model {name}: chunk {index} says total={total} but the upload started "
                f"with total={self.total}"
            )
        if not 0 <= index < total:
            raise ModelStoreError(f"model {name}: chunk index {index} out of range [0, {total})")
        held = self.chunks.get(index)
        if held is None:
            self.chunks[index] = bytes(data)
        elif held != data:
            raise ModelStoreError(
                f"model {name}: chunk {index} received twice with different bytes "
                f"({len(held)} then {len(data)} bytes)"
            )
        return self.complete

    @property
    def complete(self) -> bool:
        return len(self.chunks) == self.total

    @property
    def received_bytes(self) -> int:
        return sum(len(c) for c in self.chunks.values())

    def missing(self) -> list[int]:
        """Chunk indices not yet received, ascending."""
        return [i for i in range(self.total) if i not in self.chunks]

    def assemble(self) -> bytes:
        """The model bytes; raises :class:`ModelStoreError` if chunks are missing."""
        missing = self.missing()
        if missing:
            raise ModelStoreError(
                f"model {_short(self.model_hash)}: cannot assemble, "
                f"{len(missing)} of {self.total} chunks missing (first: {missing[0]})"
            )
        return b"".join(self.chunks[i] for i in range(self.total))


class ModelStore:
    """ONNX models on disk, named by the sha256 of their bytes.

    ``max_chunks`` bounds the ``total`` an upload may announce, so a malformed message
    cannot make the node reserve unbounded state. ``validate`` checks that stored bytes
    parse as an ONNX model and pass ``onnx.checker`` before they get a name.
    """

    def __init__(self, root: Path | str, *, max_chunks: int = 65536, validate: bool = True) -> None:
        self._root = Path(root)
        try:
            self._root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ModelStoreError(f"cannot create model store at {self._root}: {exc}") from exc
        self._max_chunks = max_chunks
        self._validate = validate
        self._uploads: dict[str, ModelUpload] = {}

    @property
    def root(self) -> Path:
        return self._root

    def _file(self, model_hash: str) -> Path:
        return self._root / f"{model_hash}{MODEL_SUFFIX}"

    def has(self, model_hash: str) -> bool:
        """True if the store holds the model (False for malformed hashes too)."""
        try:
            canonical = check_model_hash(model_hash)
        except UnknownModelError:
            return False
        return self._file(canonical).is_file()

    def path(self, model_hash: str) -> Path:
        """Path of a stored model; raises :class:`UnknownModelError` naming the hash."""
        canonical = check_model_hash(model_hash)
        file = self._file(canonical)
        if not file.is_file():
            raise UnknownModelError(f"unknown model {canonical}: not in the store at {self._root}")
        return file

    def read(self, model_hash: str) -> bytes:
        """Bytes of a stored model (for forwarding it to another node)."""
        return self.path(model_hash).read_bytes()

    def size(self, model_hash: str) -> int:
        """Size in bytes of a stored model."""
        return self.path(model_hash).stat().st_size

    def list(self) -> builtins.list[str]:
        """Hashes of all stored models, sorted."""
        found = []
        for file in self._root.glob(f"*{MODEL_SUFFIX}"):
            stem = file.name[: -len(MODEL_SUFFIX)]
            if _HASH_RE.fullmatch(stem):
                found.append(stem)
        return sorted(found)

    def _check_onnx(self, data: bytes, model_hash: str) -> None:
        try:
            model = onnx.load_model_from_string(data)
            onnx.checker.check_model(model)
        except (DecodeError, onnx.checker.ValidationError, ValueError, RuntimeError) as exc:
            raise ModelStoreError(
                f"model {_short(model_hash)} is not a valid ONNX model: {exc}"
            ) from exc

    def put(self, data: bytes) -> str:
        """Store model bytes and return their hash (idempotent)."""
        model_hash = sha256_bytes(data)
        file = self._file(model_hash)
        if file.is_file():
            return model_hash
        if self._validate:
            self._check_onnx(data, model_hash)
        try:
            write_atomic(file, data)
        except OSError as exc:
            raise ModelStoreError(f"cannot write model {_short(model_hash)}: {exc}") from exc
        return model_hash

    def put_file(self, path: Path | str) -> str:
        """Store the ONNX file at ``path`` and return its hash."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ModelStoreError(f"cannot read model file {path}: {exc}") from exc
        return self.put(data)

    def remove(self, model_hash: str) -> None:
        """Delete a stored model; raises :class:`UnknownModelError` if it is not held."""
        self.path(model_hash).unlink()

    def receive_chunk(self, model_hash: str, index: int, total: int, data: bytes) -> str | None:
        """Take one chunk of an upload; return the hash once the model is stored, else None.

        Chunks may arrive in any order and more than once. When the last missing chunk
        arrives the bytes are joined and hashed; a mismatch discards the upload (the sender
        starts again) and raises :class:`ModelStoreError` naming expected and actual hashes.
        A chunk for a model already stored returns its hash at once.
        """
        canonical = check_model_hash(model_hash)
        if self._file(canonical).is_file():
            self._uploads.pop(canonical, None)
            return canonical
        if not isinstance(total, int) or not 1 <= total <= self._max_chunks:
            raise ModelStoreError(
                f"model {_short(canonical)}: chunk total must be in [1, {self._max_chunks}], "
                f"got {total!r}"
            )
        upload = self._uploads.get(canonical) or ModelUpload(canonical, total)
        complete = upload.add(index, total, data)  # raises before a new upload is kept
        self._uploads[canonical] = upload
        if not complete:
            return None
        del self._uploads[canonical]
        blob = upload.assemble()
        actual = sha256_bytes(blob)
        if actual != canonical:
            raise ModelStoreError(
                f"model upload corrupt: expected sha256 {canonical}, got {actual} "
                f"({len(blob)} bytes in {total} chunks); upload discarded"
            )
        return self.put(blob)

    def upload(self, model_hash: str) -> ModelUpload | None:
        """The upload in progress for ``model_hash``, if any."""
        return self._uploads.get(check_model_hash(model_hash))

    def pending_uploads(self) -> builtins.list[str]:
        """Hashes of uploads started but not complete, sorted."""
        return sorted(self._uploads)

    def abort_upload(self, model_hash: str) -> None:
        """Forget the chunks received for ``model_hash`` (no error if there are none)."""
        self._uploads.pop(check_model_hash(model_hash), None)
