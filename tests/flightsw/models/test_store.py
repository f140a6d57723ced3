"""Content-addressed model store and chunked uploads."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from flightsw.exceptions import ModelStoreError, UnknownModelError
from flightsw.models.store import ModelStore, check_model_hash, chunk_model, sha256_file


@pytest.fixture
def model_bytes(examples_dir: Path) -> bytes:
    return (examples_dir / "digits_classifier.onnx").read_bytes()


def test_put_names_model_by_sha256_and_round_trips(store: ModelStore, model_bytes: bytes) -> None:
    h = store.put(model_bytes)
    assert h == hashlib.sha256(model_bytes).hexdigest()
    assert store.has(h)
    assert store.path(h).name == f"{h}.onnx"
    assert store.read(h) == model_bytes
    assert store.size(h) == len(model_bytes)
    assert sha256_file(store.path(h)) == h
    assert store.put(model_bytes) == h  # idempotent
    assert store.list() == [h]


def test_put_file_and_list_sorted(store: ModelStore, examples_dir: Path) -> None:
    hashes = [store.put_file(p) for p in sorted(examples_dir.glob("*.onnx"))]
    assert len(set(hashes)) == 4
    assert store.list() == sorted(hashes)
    # writes are atomic: no temporary files left behind
    assert sorted(p.name for p in store.root.iterdir()) == sorted(f"{h}.onnx" for h in hashes)


def test_store_reopens_with_models_on_disk(tmp_path: Path, model_bytes: bytes) -> None:
    h = ModelStore(tmp_path).put(model_bytes)
    assert ModelStore(tmp_path).list() == [h]


def test_unknown_hash_names_the_hash(store: ModelStore) -> None:
    missing = "ab" * 32
    with pytest.raises(UnknownModelError, match=missing):
        store.path(missing)
    assert not store.has(missing)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "abc", "g" * 64, ""])
def test_malformed_hash_is_unknown_model(store: ModelStore, bad: str) -> None:
    with pytest.raises(UnknownModelError, match="not a sha256 hex digest"):
        store.path(bad)
    assert not store.has(bad)


def test_hash_is_case_insensitive(store: ModelStore, model_bytes: bytes) -> None:
    h = store.put(model_bytes)
    assert check_model_hash(h.upper()) == h
    assert store.path(h.upper()) == store.path(h)


def test_put_rejects_bytes_that_are_not_onnx(store: ModelStore) -> None:
    with pytest.raises(ModelStoreError, match="not a valid ONNX model"):
        store.put(b"\x00\x01 definitely not a protobuf model \xff" * 10)
    assert store.list() == []


def test_chunked_upload_out_of_order_with_duplicates(store: ModelStore, model_bytes: bytes) -> None:
    h = hashlib.sha256(model_bytes).hexdigest()
    chunks = chunk_model(model_bytes, 1000)
    assert b"".join(chunks) == model_bytes
    assert len(chunks) == -(-len(model_bytes) // 1000)
    order = np.random.default_rng(7).permutation(len(chunks)).tolist()
    results = []
    for n, i in enumerate(order):
        results.append(store.receive_chunk(h, i, len(chunks), chunks[i]))
        if n == 3:  # at-least-once delivery: a repeated chunk is harmless
            assert store.receive_chunk(h, i, len(chunks), chunks[i]) is None
    assert results[:-1] == [None] * (len(chunks) - 1)
    assert results[-1] == h
    assert store.read(h) == model_bytes
    assert store.pending_uploads() == []
    # a late duplicate after completion returns the hash again
    assert store.receive_chunk(h, 0, len(chunks), chunks[0]) == h


def test_upload_progress_is_visible(store: ModelStore, model_bytes: bytes) -> None:
    h = hashlib.sha256(model_bytes).hexdigest()
    chunks = chunk_model(model_bytes, 4096)
    store.receive_chunk(h, 2, len(chunks), chunks[2])
    upload = store.upload(h)
    assert upload is not None
    assert upload.missing() == [i for i in range(len(chunks)) if i != 2]
    assert upload.received_bytes == len(chunks[2])
    assert store.pending_uploads() == [h]
    store.abort_upload(h)
    assert store.pending_uploads() == []


def test_corrupt_upload_names_expected_and_actual_hash(
    store: ModelStore, model_bytes: bytes
) -> None:
    h = hashlib.sha256(model_bytes).hexdigest()
    chunks = chunk_model(model_bytes, 5000)
    bad = bytearray(chunks[1])
    bad[10] ^= 0xFF
    corrupt = [chunks[0], bytes(bad), *chunks[2:]]
    actual = hashlib.sha256(b"".join(corrupt)).hexdigest()
    for i, c in enumerate(corrupt[:-1]):
        assert store.receive_chunk(h, i, len(corrupt), c) is None
    with pytest.raises(ModelStoreError, match=f"expected sha256 {h}, got {actual}"):
        store.receive_chunk(h, len(corrupt) - 1, len(corrupt), corrupt[-1])
    assert not store.has(h)
    assert store.pending_uploads() == []  # discarded: the sender starts again
    for i, c in enumerate(chunks):
        done = store.receive_chunk(h, i, len(chunks), c)
    assert done == h


def test_chunk_index_out_of_range(store: ModelStore, model_bytes: bytes) -> None:
    h = hashlib.sha256(model_bytes).hexdigest()
    with pytest.raises(ModelStoreError, match=r"chunk index 3 out of range \[0, 3\)"):
        store.receive_chunk(h, 3, 3, b"x")
    with pytest.raises(ModelStoreError, match=r"chunk index -1 out of range"):
        store.receive_chunk(h, -1, 3, b"x")
    assert store.pending_uploads() == []


def test_chunk_total_inconsistent_or_invalid(store: ModelStore, model_bytes: bytes) -> None:
    h = hashlib.sha256(model_bytes).hexdigest()
    store.receive_chunk(h, 0, 4, b"abc")
    with pytest.raises(ModelStoreError, match="total=5 but the upload started with total=4"):
        store.receive_chunk(h, 1, 5, b"def")
    with pytest.raises(ModelStoreError, match=r"chunk total must be in \[1, 65536\], got 0"):
        store.receive_chunk("cd" * 32, 0, 0, b"")


def test_chunk_resent_with_different_bytes_is_refused(
    store: ModelStore, model_bytes: bytes
) -> None:
    h = hashlib.sha256(model_bytes).hexdigest()
    store.receive_chunk(h, 0, 2, b"abc")
    with pytest.raises(ModelStoreError, match="chunk 0 received twice with different bytes"):
        store.receive_chunk(h, 0, 2, b"abd")


def test_chunk_for_malformed_hash(store: ModelStore) -> None:
    with pytest.raises(UnknownModelError, match="not a sha256 hex digest"):
        store.receive_chunk("nope", 0, 1, b"")


def test_chunk_model_rejects_bad_size() -> None:
    with pytest.raises(ModelStoreError, match="chunk_size must be positive"):
        chunk_model(b"abc", 0)
    assert chunk_model(b"", 10) == [b""]
    assert chunk_model(b"abcde", 2) == [b"ab", b"cd", b"e"]
