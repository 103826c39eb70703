"""The published-model parameter of local builds, in a file: what the emulator's SSM held for one command.

`ModelRegistry` talks to it exactly as to SSM (get_parameter, put_parameter, get_parameter_history, with
SSM's ParameterNotFound error), so publish, promote, rollback and the version history behave the same.
A model published by a local `coach build --fine-tune --wait` is then what a later `coach serve` or
`coach models list` in the same working folder sees. The file is `.coach/registry.json` in the working
folder unless COACH_LOCAL_REGISTRY names another; it is rewritten whole and renamed, never half-written.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from coach.local.dir_store import write_atomically
from coach.local.file_lock import held
from coach.settings import DEFAULT_MODEL_PARAMETER

DEFAULT_PATH = Path(".coach") / "registry.json"
MODEL_PARAMETER = DEFAULT_MODEL_PARAMETER  # the same name the emulated stack uses


def registry_path() -> Path:
    return Path(os.environ.get("COACH_LOCAL_REGISTRY") or DEFAULT_PATH)


def _not_found(name: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "ParameterNotFound", "Message": f"parameter {name} not found"}},
                       operation)


class ParameterFile:
    """The part of the SSM client API that ModelRegistry uses, over one JSON file of parameters."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else registry_path()
        self._lock = threading.Lock()

    def _load(self) -> dict[str, list[dict[str, Any]]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return data.get("parameters", {}) if isinstance(data, dict) else {}

    def get_parameter(self, Name: str, **_: Any) -> dict[str, Any]:
        versions = self._load().get(Name)
        if not versions:
            raise _not_found(Name, "GetParameter")
        latest = versions[-1]
        return {"Parameter": {"Name": Name, "Value": latest["Value"], "Version": latest["Version"],
                              "Type": "String", "LastModifiedDate": datetime.fromisoformat(latest["At"])}}

    def put_parameter(self, Name: str, Value: str, Description: str = "", Overwrite: bool = False,
                      **_: Any) -> dict[str, Any]:
        with self._lock, held(self.path.with_name(self.path.name + ".lock")):  # other processes publish too
            parameters = self._load()
            versions = parameters.setdefault(Name, [])
            if versions and not Overwrite:
                raise ClientError({"Error": {"Code": "ParameterAlreadyExists", "Message": Name}}, "PutParameter")
            version = (versions[-1]["Version"] if versions else 0) + 1
            versions.append({"Version": version, "Value": Value, "Description": Description,
                             "At": datetime.now(UTC).isoformat()})
            del versions[:-100]  # SSM keeps the last 100 versions
            write_atomically(self.path, json.dumps({"parameters": parameters}, indent=1) + "\n")
        return {"Version": version, "Tier": "Standard"}

    def get_parameter_history(self, Name: str, MaxResults: int = 50, NextToken: str | None = None,
                              **_: Any) -> dict[str, Any]:
        versions = self._load().get(Name)
        if not versions:
            raise _not_found(Name, "GetParameterHistory")
        start = int(NextToken or 0)
        page = versions[start:start + MaxResults]
        answer: dict[str, Any] = {"Parameters": [
            {"Name": Name, "Value": v["Value"], "Version": v["Version"], "Description": v.get("Description", ""),
             "Type": "String", "LastModifiedDate": datetime.fromisoformat(v["At"])} for v in page]}
        if start + MaxResults < len(versions):
            answer["NextToken"] = str(start + MaxResults)
        return answer
