"""Copy the files pip installed for one distribution into a staging tree (image build helper).

    python stage_package.py SITE_PACKAGES DIST_NAME STAGE_DIR

Reads the distribution's ``RECORD`` (every file pip wrote for it, console scripts and
byte-code included) and copies each file to ``STAGE_DIR`` + its absolute path, so the final
image stage can ``COPY`` just the project on top of an unchanged dependency layer.
"""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

__all__ = ["main", "stage"]


def stage(site_packages: Path, dist: str, out: Path) -> int:
    """Copy ``dist``'s installed files under ``out``; returns how many."""
    infos = sorted(site_packages.glob(f"{dist.replace('-', '_')}-*.dist-info"))
    if len(infos) != 1:
        raise SystemExit(f"stage_package: want one {dist} dist-info in {site_packages}, "
                         f"found {[p.name for p in infos]}")
    count = 0
    with (infos[0] / "RECORD").open(newline="") as f:
        for row in csv.reader(f):
            if not row:
                continue
            src = (site_packages / row[0]).resolve()
            if not src.is_file():
                continue  # RECORD may list files that were never written (e.g. skipped .pyc)
            dst = out / src.relative_to(src.anchor)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
            count += 1
    return count


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.split("\n\n")[1].strip(), file=sys.stderr)
        return 2
    n = stage(Path(argv[0]), argv[1], Path(argv[2]))
    print(f"stage_package: {n} files of {argv[1]} staged in {argv[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
