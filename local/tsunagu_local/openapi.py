"""Print the OpenAPI document generated from the API functions' routes (docs/openapi.json)."""

from __future__ import annotations

import importlib.util
import json
import os

from tsunagu_local.resources import ROOT


def document() -> dict[str, object]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "ap-northeast-1")
    spec = importlib.util.spec_from_file_location("api_docs_app", ROOT / "functions/api_docs/app.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    doc: dict[str, object] = mod.openapi()
    return doc


if __name__ == "__main__":
    print(json.dumps(document(), ensure_ascii=False, indent=2, sort_keys=True))
