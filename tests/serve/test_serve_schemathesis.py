"""Property-based API testing from the OpenAPI schema: no 5xx, responses match the schema."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from visionforge.serve import create_app


def _image_bytes(fmt: str) -> st.SearchStrategy[bytes]:
    """Real small images in ``fmt``: what the schema's image media types promise."""

    def encode(args) -> bytes:
        import io

        import numpy as np
        from PIL import Image

        h, w, seed = args
        arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format=fmt)
        return buf.getvalue()

    sizes = st.integers(8, 40)
    return st.tuples(sizes, sizes, st.integers(0, 2**16)).map(encode)


schemathesis.openapi.media_type("image/png", _image_bytes("PNG"))
schemathesis.openapi.media_type("image/jpeg", _image_bytes("JPEG"))
schemathesis.openapi.media_type("image/tiff", _image_bytes("TIFF"))


@pytest.fixture(scope="module")
def api_schema(classifier_dir, seg_dir, detector_dir):
    app = create_app(
        {"digits": classifier_dir, "tissue": seg_dir, "cells": detector_dir},
        backend="torch",
        max_upload_bytes=100_000,
        max_pixels=250_000,
    )
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_openapi_no_server_errors(api_schema):
    # schemathesis' pytest fixture integration needs pytest internals this pytest lacks, so each
    # operation's strategy is driven by Hypothesis directly (same checks as call_and_validate).
    operations = [r.ok() for r in api_schema.get_all_operations()]
    labels = {op.label for op in operations}
    assert {"POST /predict", "POST /predict/batch", "POST /segment", "POST /detect",
            "GET /models"} <= labels
    for op in operations:

        @given(case=op.as_strategy())
        @settings(
            max_examples=6,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def check(case):
            # Every default check runs, "schema-valid request accepted" included: the schema
            # declares image media types for uploads, so generated files are real images.
            case.call_and_validate()

        check()
