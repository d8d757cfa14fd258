"""The image's CycloneDX bill of materials, made at build time (Dockerfile).

    sbom.py base PYTHON_ENV.cdx.json DPKG_STATUS OUT      OS packages + the venv
    sbom.py runner BASE.cdx.json VERSION OUT              + dbt-runner itself

The venv's components come from `cyclonedx-py environment` (CycloneDX's own
generator, run by the Dockerfile); this adds the Debian packages the image runs on,
read from dpkg's status file, and finally the runner, with cyclonedx-python-lib's
model and serializer, so the document is valid CycloneDX by construction.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL


def dpkg_packages(status: str) -> list[tuple[str, str, str]]:
    """Installed packages (name, version, architecture) from a dpkg status file."""
    packages = []
    for stanza in status.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " "
        )
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            packages.append((fields["Package"], fields["Version"], fields["Architecture"]))
    return sorted(packages)


def deb_component(name: str, version: str, arch: str) -> Component:
    purl = PackageURL("deb", "debian", name, version, {"arch": arch, "distro": "debian-12"})
    return Component(
        name=name, version=version, type=ComponentType.LIBRARY, purl=purl, bom_ref=str(purl)
    )


def _describe_image(bom: Bom, name: str, version: str | None) -> None:
    """The document's subject: the image, depending on every component in it."""
    if bom.metadata.component is None:
        bom.metadata.component = Component(
            name=name, type=ComponentType.CONTAINER, bom_ref="dbt-runner-image"
        )
    bom.metadata.component.name, bom.metadata.component.version = name, version
    bom.register_dependency(bom.metadata.component, list(bom.components))


def base(python_sbom: Path, dpkg_status: Path, out: Path) -> None:
    bom = Bom.from_json(json.loads(python_sbom.read_text()))  # type: ignore[attr-defined]
    for name, version, arch in dpkg_packages(dpkg_status.read_text()):
        bom.components.add(deb_component(name, version, arch))
    _describe_image(bom, "dbt-runner-base", None)
    out.write_text(JsonV1Dot6(bom).output_as_string(indent=2))


def runner(base_sbom: Path, version: str, out: Path) -> None:
    bom = Bom.from_json(json.loads(base_sbom.read_text()))  # type: ignore[attr-defined]
    purl = PackageURL("pypi", None, "dbt-runner", version)
    bom.components.add(
        Component(
            name="dbt-runner",
            version=version,
            type=ComponentType.APPLICATION,
            purl=purl,
            bom_ref=str(purl),
        )
    )
    _describe_image(bom, "dbt-runner", version)
    out.write_text(JsonV1Dot6(bom).output_as_string(indent=2))


def main(argv: list[str]) -> int:
    command, *args = argv
    if command == "base":
        base(Path(args[0]), Path(args[1]), Path(args[2]))
    elif command == "runner":
        runner(Path(args[0]), args[1], Path(args[2]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
