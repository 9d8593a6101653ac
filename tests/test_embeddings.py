"""POST /v1/embeddings with the embedded MiniLM, checked against vectors made by sentence-transformers."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from omnimini.engine.embedder import MiniLMEmbedder
from omnimini.models.catalog import EMBEDDED_EMBED_SOURCE
from omnimini.models.weights import locate
from openapi_contract import validate

REFERENCE = json.loads((Path(__file__).parent / "data/minilm_reference.json").read_text())
MODEL = "omnimini-embed"


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder(locate(EMBEDDED_EMBED_SOURCE, Path(".")))


def test_numpy_minilm_matches_sentence_transformers(embedder):
    items = REFERENCE["inputs"]
    ours = embedder.embed([i["text"] for i in items])
    for item, vec in zip(items, ours):
        ref = np.array(item["embedding"], dtype=np.float32)
        assert np.abs(vec - ref).max() < 1e-4, item["name"]
        assert float(vec @ ref) > 0.99999
        assert embedder.encode_ids([item["text"]])[0] == item["input_ids"]


def test_batching_does_not_change_vectors(embedder):
    texts = [i["text"] for i in REFERENCE["inputs"]]
    together = embedder.embed(texts)
    alone = np.stack([embedder.embed([t])[0] for t in texts])
    assert np.abs(together - alone).max() < 1e-5


def test_embeddings_endpoint_float_and_base64(client, http):
    texts = ["The cat sat on the mat.", "A feline rested on the rug.", "Stock markets fell sharply."]
    r = http.post("/embeddings", json={"model": MODEL, "input": texts, "encoding_format": "float"})
    assert r.status_code == 200
    body = r.json()
    validate(body, "CreateEmbeddingResponse")
    vecs = np.array([d["embedding"] for d in body["data"]])
    assert vecs.shape == (3, 384) and np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.3          # meaning, not noise
    b64 = http.post("/embeddings", json={"model": MODEL, "input": texts, "encoding_format": "base64"}).json()
    decoded = np.frombuffer(base64.b64decode(b64["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(decoded, vecs[0], atol=1e-6)
    # The SDK asks for base64 by default and decodes it itself.
    sdk = client.embeddings.create(model=MODEL, input=texts[0])
    assert np.allclose(sdk.data[0].embedding, vecs[0], atol=1e-6)
    assert sdk.usage.prompt_tokens == sdk.usage.total_tokens == 9
    assert sdk.model == "all-minilm-l6-v2"


def test_embeddings_reference_over_http(client):
    item = next(i for i in REFERENCE["inputs"] if i["truncated"])
    r = client.embeddings.create(model=MODEL, input=item["text"])
    assert np.abs(np.array(r.data[0].embedding) - np.array(item["embedding"])).max() < 1e-4
    assert r.usage.prompt_tokens == item["num_tokens"] == 256


def test_token_id_input(client, embedder):
    ids = embedder.tokenizer.encode("hello world", add_special_tokens=False).ids
    a = client.embeddings.create(model=MODEL, input=[ids], encoding_format="float")
    b = client.embeddings.create(model=MODEL, input="hello world", encoding_format="float")
    assert np.allclose(a.data[0].embedding, b.data[0].embedding, atol=1e-6)


@pytest.mark.parametrize("body,status,param", [
    ({"input": ""}, 400, "input"),
    ({"input": ["ok", ""]}, 400, "input"),
    ({"input": []}, 400, "input"),
    ({"input": 5}, 400, "input"),
    ({"input": "x", "dimensions": 128}, 400, "dimensions"),
    ({"input": "x", "encoding_format": "int8"}, 400, "encoding_format"),
    ({"input": [[1, 99999999]]}, 400, "input"),
    ({"input": "x", "model": "omnimini-mini"}, 400, "model"),
    ({"input": "x", "model": "text-embedding-9"}, 404, "model"),
])
def test_embeddings_bad_input(http, body, status, param):
    r = http.post("/embeddings", json={"model": MODEL, **body})
    assert r.status_code == status, r.text
    validate(r.json(), "ErrorResponse")
    assert r.json()["error"]["param"] == param
