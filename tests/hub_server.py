"""A local Meltano Hub API on 127.0.0.1, built from Hub `_data` directories as the Hub builds it.

The Hub turns its `_data/` tree into static JSON files (`utility_scripts/api/make_files.py` in
meltano/hub): one index per plugin type (`/meltano/api/v1/plugins/<type>/index`: default variant,
logo and each variant's `ref`) and one definition per variant
(`/meltano/api/v1/plugins/<type>/<name>--<variant>`: the YAML as JSON, with the fields only the
Hub's web pages use dropped, i.e. those the API schema of the plugin type (`schemas/api/`) does
not list, `logo_url` made absolute and `docs` pointing at the Hub page). `LocalHub` serves the same
files, so `MELTANO_HUB_URL=<hub.url> meltano add <name>` resolves plugins exactly as it does on
hub.meltano.com; `hub.requests` records what Meltano asked for.
"""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

API_ROOT = "/meltano/api/v1/plugins"
PLUGIN_TYPES = (
    "extractors", "loaders", "transformers", "utilities", "transforms", "orchestrators",
    "mappers", "files",
)  # fmt: skip


def api_fields(api_schemas: Path, plugin_type: str) -> set[str]:
    """The top-level keys the Hub's API schema allows in a definition of `plugin_type`
    (its `additionalProperties: false` part): keywords, maintenance_status, quality, usage, ...
    stay on the Hub's web page."""
    schema = json.loads((api_schemas / f"{plugin_type}.schema.json").read_text())
    (closed,) = [s for s in schema["allOf"] if s.get("additionalProperties") is False]
    return set(closed["properties"])


def build_api(data_dirs: list[Path], hub_url: str, api_schemas: Path) -> dict[str, Any]:
    """API path -> JSON document, for the `_data` directories given (later ones add plugins)."""
    default_variants: dict[str, dict[str, str]] = {t: {} for t in PLUGIN_TYPES}
    definitions: dict[str, dict[str, dict[str, dict[str, Any]]]] = {t: {} for t in PLUGIN_TYPES}
    for data in data_dirs:
        defaults_file = data / "default_variants.yml"
        if defaults_file.exists():
            for plugin_type, plugins in (yaml.safe_load(defaults_file.read_text()) or {}).items():
                default_variants[plugin_type].update(plugins)
        for plugin_type in PLUGIN_TYPES:
            for variant_file in sorted((data / "meltano" / plugin_type).glob("*/*.yml")):
                plugin = variant_file.parent.name
                definition = yaml.safe_load(variant_file.read_text())
                definitions[plugin_type].setdefault(plugin, {})[variant_file.stem] = definition

    api: dict[str, Any] = {}
    global_index: dict[str, Any] = {}
    for plugin_type in PLUGIN_TYPES:
        type_index: dict[str, Any] = {}
        allowed = api_fields(api_schemas, plugin_type) if definitions[plugin_type] else set()
        for plugin, variants in definitions[plugin_type].items():
            default_variant = default_variants[plugin_type].get(plugin)
            entry: dict[str, Any] = {"default_variant": default_variant, "variants": {}}
            entry["logo_url"] = None
            for variant, source in variants.items():
                full_name = f"{plugin}--{variant}"
                definition = {k: v for k, v in source.items() if k in allowed}
                if "logo_url" in definition:
                    definition["logo_url"] = f"{hub_url}{definition['logo_url']}"
                definition["docs"] = f"{hub_url}/{plugin_type}/{full_name}"
                path = f"{API_ROOT}/{plugin_type}/{full_name}"
                api[path] = definition
                entry["variants"][variant] = {"ref": f"{hub_url}{path}"}
                if variant == default_variant:
                    entry["logo_url"] = definition.get("logo_url")
            type_index[plugin] = entry
        api[f"{API_ROOT}/{plugin_type}/index"] = type_index
        global_index[plugin_type] = type_index
    api[f"{API_ROOT}/index"] = global_index
    return api


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        hub = self.server.hub
        path = self.path.split("?", 1)[0]
        with hub.lock:
            hub.requests.append(path)
        document = hub.api.get(path)
        status = HTTPStatus.OK if document is not None else HTTPStatus.NOT_FOUND
        body = json.dumps(document if document is not None else {"message": "Not Found"})
        payload = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads `hub.requests`."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, hub: LocalHub) -> None:
        self.hub = hub
        super().__init__(("127.0.0.1", 0), _Handler)


class LocalHub:
    """The Hub API for `data_dirs` (shaped by the Hub's `schemas/api`), served on 127.0.0.1 while
    started (also a context manager)."""

    def __init__(self, data_dirs: list[Path], api_schemas: Path) -> None:
        self.data_dirs = data_dirs
        self.api_schemas = api_schemas
        self.api: dict[str, Any] = {}
        self.requests: list[str] = []
        self.lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """What MELTANO_HUB_URL is set to, e.g. http://127.0.0.1:PORT."""
        assert self._server is not None, "the hub is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> LocalHub:
        """Bind a free port, build the API for it and serve in a daemon thread."""
        self._server = _Server(self)
        self.api = build_api(self.data_dirs, self.url, self.api_schemas)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LocalHub:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
