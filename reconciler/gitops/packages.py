"""Transport packages: objects with their dependency closure, a manifest and checksums, in a zip.

Owns the package format (objects/<path in the environment folder>, manifest.json, SHA256SUMS),
building one from an environment at a commit, and reading one back with every checksum
verified and its version compared with what the target environment already holds. Writing
the imported files into git is `gitops`'s; never talks to tenants.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from packaging.version import InvalidVersion, Version

from ..desired.landscape import Landscape
from ..desired.source import ENVIRONMENT_FILE, ENVIRONMENTS, open_repo
from ..errors import GuardRefused, PackageError
from ..model import ObjectKey
from . import history as gitops

FORMAT = 1
MANIFEST, CHECKSUMS, OBJECTS = "manifest.json", "SHA256SUMS", "objects"
RECORDS = ".packages"       # inside an environment folder: the manifests of imported packages
_FIXED_TIME = (2000, 1, 1, 0, 0, 0)   # zip entries carry no build time: same input, same bytes


@dataclass(frozen=True)
class Package:
    manifest: dict
    files: dict[str, bytes]          # path inside the environment folder -> bytes

    @property
    def label(self) -> str:
        return f"{self.manifest['name']} {self.manifest['version']}"


def export(repo: Path, landscape: Landscape, selection: list[str] | None, name: str, version: str,
           notes: str) -> bytes:
    """The zip of `selection` (default: every promotable object) and everything it reads."""
    _version(version)
    keys = _closure(landscape, selection)
    commit = open_repo(repo).commit(landscape.source.commit or "HEAD")
    root = PurePosixPath(ENVIRONMENTS, landscape.name)
    files, objects = {}, []
    for key in sorted(keys):
        path = landscape.documents[key].path
        relative = str(PurePosixPath(path).relative_to(root))
        files[relative] = (commit.tree / path).data_stream.read()
        objects.append({"object": str(key), "kind": landscape.objects[key].kind, "path": relative,
                        "dependencies": sorted(map(str, landscape.dependencies[key]))})
    chosen = set(gitops.resolve_names(selection, set(landscape.objects))) if selection else keys
    manifest = {
        "format": FORMAT, "name": name, "version": version, "release_notes": notes,
        "source": {"environment": landscape.name, "commit": commit.hexsha},
        "objects": objects,
        "dependency_report": [{"object": str(k), "added_because": sorted(
            str(c) for c in chosen if k in _upstream_keys(landscape, c))} for k in sorted(keys - chosen)],
        "required_connections": sorted(str(k) for k in keys if landscape.objects[k].kind == "Connection"),
    }
    entries = {f"{OBJECTS}/{path}": data for path, data in files.items()}
    entries[MANIFEST] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    entries[CHECKSUMS] = "".join(f"{_sha256(data)}  {path}\n" for path, data in sorted(entries.items())).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in sorted(entries.items()):
            archive.writestr(zipfile.ZipInfo(path, date_time=_FIXED_TIME), data)
    return buffer.getvalue()


def read(path: Path) -> Package:
    """A package with every checksum verified; anything tampered, missing or extra is refused."""
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as error:
        raise PackageError(f"{path}: not a package: {error}") from None
    with archive:
        names = set(archive.namelist())
        if CHECKSUMS not in names or MANIFEST not in names:
            raise PackageError(f"{path}: not a package: {CHECKSUMS} or {MANIFEST} is missing")
        listed = {}
        for line in archive.read(CHECKSUMS).decode().splitlines():
            digest, _, name = line.partition("  ")
            listed[name] = digest
        for name in sorted(names - {CHECKSUMS}):
            if name not in listed:
                raise PackageError(f"{path}: {name} is not listed in {CHECKSUMS}; the package was altered")
            if _sha256(archive.read(name)) != listed[name]:
                raise PackageError(f"{path}: {name} does not match its checksum; the package was altered")
        missing = sorted(set(listed) - names)
        if missing:
            raise PackageError(f"{path}: {', '.join(missing)} listed in {CHECKSUMS} but missing")
        try:
            manifest = json.loads(archive.read(MANIFEST))
        except ValueError as error:
            raise PackageError(f"{path}: {MANIFEST} is not JSON: {error}") from None
        files = {}
        for name in names:
            if name.startswith(f"{OBJECTS}/"):
                relative = PurePosixPath(name).relative_to(OBJECTS)
                if ".." in relative.parts or relative.is_absolute() or relative.suffix not in (".yaml", ".yml"):
                    raise PackageError(f"{path}: {name} is not an object file inside the folder")
                if relative.name == ENVIRONMENT_FILE or any(part.startswith(".") for part in relative.parts):
                    # the target's rules, tenants and package records are its own, never a package's
                    raise PackageError(f"{path}: {name} is not an object file: a package carries object files "
                                       "only; the package is refused")
                files[str(relative)] = archive.read(name)
    if manifest.get("format") != FORMAT:
        raise PackageError(f"{path}: package format {manifest.get('format')} is not {FORMAT}")
    return Package(manifest, files)


def check_version(package: Package, installed: dict | None) -> None:
    """A package installs only over an older version of itself."""
    if installed is None:
        return
    if _version(package.manifest["version"]) <= _version(installed["version"]):
        raise GuardRefused(f"{package.manifest['name']} {installed['version']} is already imported; "
                           f"{package.manifest['version']} is not newer")


def record_path(environment: str, name: str) -> str:
    return str(PurePosixPath(ENVIRONMENTS, environment, RECORDS, f"{name}.json"))


def _closure(landscape: Landscape, selection: list[str] | None) -> set[ObjectKey]:
    held = gitops.held_back(landscape, set(landscape.objects))
    if selection is None:
        return set(landscape.objects) - set(held)
    keys = set()
    for key in gitops.resolve_names(selection, set(landscape.objects)):
        if key in held:
            raise GuardRefused(f"cannot export {key}: {held[key]}")
        keys |= {key, *_upstream_keys(landscape, key)}
    return keys


def _upstream_keys(landscape: Landscape, key: ObjectKey) -> set[ObjectKey]:
    return {upstream for upstream, _ in gitops.upstream(landscape, key)}


def _version(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        raise PackageError(f"'{text}' is not a version (semantic versions such as 1.4.0)") from None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
